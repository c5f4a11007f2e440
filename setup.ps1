<#
.SYNOPSIS
    Sets up housing on Windows: a virtualenv, the pinned dependencies, the data, a first model.

.DESCRIPTION
    Creates .venv with the given Python 3.11, installs requirements.txt (or requirements-dev.txt
    with -Dev) and the project, prepares and validates the data (`housing data`) and trains the
    candidates into the local MLflow store (`housing train --if-no-champion`).
    Every step says what it does; the first failure stops the script with a clear message.

.PARAMETER Python
    The Python 3.11 interpreter to build the virtualenv with: a command or a full path
    (default: "python"; e.g. "C:\Python311\python.exe").

.PARAMETER DataSource
    Where the dataset comes from when this machine cannot download it: a folder holding
    scikit-learn's cache (cal_housing_py3.pkz, used through SCIKIT_LEARN_DATA) or the raw
    cal_housing.tgz archive (passed to `housing data --source`). Default: scikit-learn downloads it.

.PARAMETER Dev
    Also install the test and lint tools (requirements-dev.txt).

.PARAMETER SkipTrain
    Stop after preparing the data.

.EXAMPLE
    .\setup.ps1 -Python C:\Python311\python.exe -DataSource D:\data\scikit_learn_data
#>
[CmdletBinding()]
param(
    [string]$Python = "python",
    [string]$DataSource = "",
    [switch]$Dev,
    [switch]$SkipTrain
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Set-Location -Path $PSScriptRoot

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

# Native programs do not throw on failure; stop on a non-zero exit code with a clear message.
function Invoke-Native([string]$Description, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) {
        throw "setup failed while trying to $Description (exit code $LASTEXITCODE)"
    }
}

Write-Step "checking Python ($Python)"
$pythonCommand = Get-Command $Python -ErrorAction SilentlyContinue
if ($null -eq $pythonCommand) {
    throw "Python not found: '$Python'. Install Python 3.11 and pass -Python C:\path\to\python.exe"
}
$version = & $Python -c "import sys; print('%d.%d' % sys.version_info[:2])"
if ($LASTEXITCODE -ne 0 -or $version -ne "3.11") {
    throw "housing needs Python 3.11, but '$Python' is Python $version. Pass -Python C:\path\to\python3.11.exe"
}

$venvPython = Join-Path $PSScriptRoot ".venv\Scripts\python.exe"
$housing = Join-Path $PSScriptRoot ".venv\Scripts\housing.exe"
if (-not (Test-Path $venvPython)) {
    Write-Step "creating the virtualenv .venv"
    Invoke-Native "create .venv" { & $Python -m venv .venv }
}
else {
    Write-Step "reusing the virtualenv .venv"
}

Write-Step "installing the pinned dependencies"
Invoke-Native "upgrade pip" { & $venvPython -m pip install --quiet --upgrade pip }
$requirements = if ($Dev) { "requirements-dev.txt" } else { "requirements.txt" }
Invoke-Native "install $requirements" { & $venvPython -m pip install --quiet -r $requirements }
Invoke-Native "install the housing package" { & $venvPython -m pip install --quiet --no-deps -e . }

$dataArgs = @()
if ($DataSource -ne "") {
    if (-not (Test-Path $DataSource)) {
        throw "data source not found: '$DataSource' (a scikit_learn_data folder or cal_housing.tgz)"
    }
    $resolved = (Resolve-Path $DataSource).Path
    if (Test-Path $resolved -PathType Container) {
        if (-not (Test-Path (Join-Path $resolved "cal_housing_py3.pkz"))) {
            throw "'$resolved' holds no cal_housing_py3.pkz: pass scikit-learn's data folder or cal_housing.tgz"
        }
        $env:SCIKIT_LEARN_DATA = $resolved
        Write-Step "using the offline dataset in $resolved (SCIKIT_LEARN_DATA)"
    }
    else {
        $dataArgs = @("--source", $resolved)
        Write-Step "using the raw archive $resolved"
    }
}

Write-Step "preparing and validating the data (housing data)"
Invoke-Native "prepare the data" { & $housing data @dataArgs }

if ($SkipTrain) {
    Write-Step "skipping training (-SkipTrain)"
}
else {
    Write-Step "training the candidates and registering the champion (housing train)"
    Invoke-Native "train" { & $housing train --if-no-champion }
}

Write-Host ""
Write-Host "Done. Next:" -ForegroundColor Green
Write-Host "  .venv\Scripts\housing.exe serve --port 8000     # the API on http://127.0.0.1:8000"
Write-Host "  .venv\Scripts\housing.exe ui --port 8501        # the UI on http://127.0.0.1:8501"
Write-Host "  .\deploy.ps1                                    # or the whole stack in Docker"
