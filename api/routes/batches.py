"""Labelled data batches over HTTP: upload a CSV (all rows stored, or none), list the batches."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminDep
from api.routes.retrain import AUTH_ERRORS, DataSettingsDep
from housing import batches as batch_store
from housing.service.schemas import ErrorBody

router = APIRouter(prefix="/data", tags=["data"])

CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")


class BatchInfo(BaseModel):
    """A stored data batch."""

    id: str
    file: str
    sha256: str = Field(description="Of the stored CSV (what retraining reads and checks)")
    rows: int
    bytes: int
    created_at: str
    source: str
    upload_sha256: str
    created: bool | None = Field(None, description="False: the same content was stored before")


class BatchRowError(BaseModel):
    """One reason the upload was refused: the row (1-based) and file line, column and rule."""

    field: str = Field(examples=["Latitude"])
    rule: str = Field(examples=["range"])
    message: str = Field(examples=["Latitude 51 is outside [32.5, 42] degrees north"])
    row: int | None = Field(None, description="Data row, 1-based; null for the whole file")
    line: int | None = Field(None, description="Line in the file (the header is line 1)")


class BatchRejectedBody(BaseModel):
    """422: nothing was stored; every broken rule (the first 100) and how many in all."""

    detail: list[BatchRowError]
    summary: str
    error_count: int
    rows: int


async def _csv_payload(request: Request) -> tuple[bytes, str]:
    """The CSV bytes and a name for them: a multipart ``file`` field, or the raw body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart upload needs a `file` field holding the CSV")
        return await upload.read(), upload.filename or "upload.csv"
    if kind and kind not in CSV_TYPES:
        raise HTTPException(415, f"send the CSV as text/csv or multipart/form-data, not {kind}")
    name = request.headers.get("x-filename") or "upload.csv"
    return await request.body(), name[:200]


@router.post(
    "/upload",
    status_code=201,
    response_model=BatchInfo,
    responses={
        **AUTH_ERRORS,
        200: {"model": BatchInfo, "description": "The same content was stored before"},
        415: {"model": ErrorBody, "description": "Not CSV"},
        422: {"model": BatchRejectedBody, "description": "Refused; nothing stored"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def upload(
    _: AdminDep, request: Request, response: Response, data: DataSettingsDep
) -> BatchInfo | JSONResponse:
    """A CSV of labelled houses (the 8 features + MedHouseVal): all rows are stored, as a new
    versioned batch with its sha256, or none, with every broken rule per row."""
    payload, name = await _csv_payload(request)
    try:
        batch, created = await run_in_threadpool(
            batch_store.store_batch, data.data_dir, payload, name
        )
    except batch_store.BatchRejectedError as exc:
        body = BatchRejectedBody(
            detail=[
                BatchRowError(
                    field=e.column, rule=e.rule, message=e.message, row=e.row, line=e.line
                )
                for e in exc.errors[: batch_store.MAX_LISTED_ERRORS]
            ],
            summary=exc.summary(),
            error_count=len(exc.errors),
            rows=exc.rows,
        )
        return JSONResponse(body.model_dump(), status_code=422)
    if not created:
        response.status_code = 200
    return BatchInfo(**batch.as_dict(), created=created)


@router.get("/batches", response_model=list[BatchInfo], responses=AUTH_ERRORS)
async def list_batches(_: AdminDep, data: DataSettingsDep) -> list[BatchInfo]:
    """The stored batches, oldest first."""
    stored = await run_in_threadpool(batch_store.read_index, data.data_dir)
    return [BatchInfo(**batch.as_dict()) for batch in stored]
