<#
.SYNOPSIS
    Builds and starts the housing stack with Docker Compose, waits for it, smoke-tests it.

.DESCRIPTION
    Runs `docker compose up -d --build` (mlflow, trainer, api, ui, prometheus, alertmanager,
    grafana), waits until the API answers /ready (the trainer must finish first), runs
    `housing smoke` inside the api container and prints the URLs. -Down stops the stack.

.PARAMETER Down
    Stop and remove the stack's containers (volumes are kept; add -RemoveVolumes to drop them).

.PARAMETER RemoveVolumes
    With -Down: also delete the named volumes (MLflow store, prediction log, dashboards state).

.PARAMETER NoBuild
    Start from the existing image (e.g. one pulled from GHCR through HOUSING_IMAGE).

.PARAMETER TimeoutSeconds
    How long to wait for the API to become ready (first run: data + training included).

.PARAMETER ApiPort
    Host port of the API (HOUSING_API_PORT in docker-compose.yml).

.EXAMPLE
    $env:GRAFANA_ADMIN_PASSWORD = Read-Host "Grafana admin password"
    $env:HOUSING_API_KEY = Read-Host "API key for the admin endpoints"
    .\deploy.ps1
.EXAMPLE
    .\deploy.ps1 -Down
#>
[CmdletBinding()]
param(
    [switch]$Down,
    [switch]$RemoveVolumes,
    [switch]$NoBuild,
    [int]$TimeoutSeconds = 900,
    [int]$ApiPort = 8000
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Set-Location -Path $PSScriptRoot

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Invoke-Native([string]$Description, [scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) {
        throw "deploy failed while trying to $Description (exit code $LASTEXITCODE)"
    }
}

if ($null -eq (Get-Command docker -ErrorAction SilentlyContinue)) {
    throw "docker not found: install Docker Desktop (with Compose v2) and start it"
}
Invoke-Native "find Docker Compose v2 ('docker compose version')" { docker compose version | Out-Null }

if ($Down) {
    Write-Step "stopping the stack"
    $downArgs = @("compose", "down", "--remove-orphans")
    if ($RemoveVolumes) { $downArgs += "--volumes" }
    # compose interpolates the whole file even to stop it; the secrets are not used for that.
    if (-not $env:GRAFANA_ADMIN_PASSWORD) { $env:GRAFANA_ADMIN_PASSWORD = "unused-for-down" }
    if (-not $env:HOUSING_API_KEY) { $env:HOUSING_API_KEY = "unused-for-down" }
    Invoke-Native "stop the stack" { docker @downArgs }
    Write-Host "Stopped." -ForegroundColor Green
    return
}

foreach ($secret in @("GRAFANA_ADMIN_PASSWORD", "HOUSING_API_KEY")) {
    if (-not [Environment]::GetEnvironmentVariable($secret)) {
        throw "set $secret first (there is no default secret), e.g. `$env:$secret = Read-Host '$secret'"
    }
}
$env:HOUSING_API_PORT = "$ApiPort"

$upArgs = @("compose", "up", "-d")
if (-not $NoBuild) { $upArgs += "--build" }
Write-Step "starting the stack (docker $($upArgs -join ' '))"
Invoke-Native "start the stack" { docker @upArgs }

$readyUrl = "http://localhost:$ApiPort/ready"
Write-Step "waiting up to $TimeoutSeconds s for $readyUrl (the trainer runs first)"
$deadline = (Get-Date).AddSeconds($TimeoutSeconds)
$ready = $false
while ((Get-Date) -lt $deadline) {
    try {
        $response = Invoke-WebRequest -Uri $readyUrl -UseBasicParsing -TimeoutSec 5
        if ($response.StatusCode -eq 200) { $ready = $true; break }
    }
    catch {
        # not up yet: the trainer may still be running, or the API still loading the model
        Write-Verbose "not ready yet: $($_.Exception.Message)"
    }
    $trainerState = docker compose ps --all --format "{{.State}} {{.ExitCode}}" trainer
    if ($trainerState -match "^exited (\d+)" -and $Matches[1] -ne "0") {
        docker compose logs --tail 40 trainer
        throw "the trainer failed (exit code $($Matches[1])); its log is above"
    }
    Start-Sleep -Seconds 5
}
if (-not $ready) {
    docker compose ps --all
    docker compose logs --tail 40 trainer api
    throw "the API did not become ready within $TimeoutSeconds s; the logs are above"
}

Write-Step "smoke test (housing smoke inside the api container)"
Invoke-Native "pass the smoke test" { docker compose exec -T api housing smoke --url http://127.0.0.1:8000 }

$uiPort = if ($env:HOUSING_UI_PORT) { $env:HOUSING_UI_PORT } else { "8501" }
$mlflowPort = if ($env:MLFLOW_PORT) { $env:MLFLOW_PORT } else { "5000" }
$prometheusPort = if ($env:PROMETHEUS_PORT) { $env:PROMETHEUS_PORT } else { "9090" }
$alertmanagerPort = if ($env:ALERTMANAGER_PORT) { $env:ALERTMANAGER_PORT } else { "9093" }
$grafanaPort = if ($env:GRAFANA_PORT) { $env:GRAFANA_PORT } else { "3000" }

Write-Host ""
Write-Host "housing is up:" -ForegroundColor Green
Write-Host "  API           http://localhost:$ApiPort/docs"
Write-Host "  UI            http://localhost:$uiPort"
Write-Host "  MLflow        http://localhost:$mlflowPort"
Write-Host "  Prometheus    http://localhost:$prometheusPort"
Write-Host "  Alertmanager  http://localhost:$alertmanagerPort"
Write-Host "  Grafana       http://localhost:$grafanaPort  (admin / `$env:GRAFANA_ADMIN_PASSWORD)"
Write-Host "Stop with .\deploy.ps1 -Down"
