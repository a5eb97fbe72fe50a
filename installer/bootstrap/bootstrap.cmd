@echo off
rem TTS Turbo bootstrap: find a CPython 3.12 (bundled, or uv-managed, downloaded once), then hand over to
rem tts_bootstrap.py, which creates the environment and picks the torch build. Arguments pass through
rem (--gpu auto^|cpu^|cu126^|cu128, --clean, --force, --wait-pid PID, --relaunch, --pause).
setlocal
for %%I in ("%~dp0..") do set "ROOT=%%~fI"
set "UV=%ROOT%\runtime\uv.exe"
set "UV_NO_CONFIG=1"
set "UV_PYTHON_INSTALL_DIR=%ROOT%\python-managed"
set "PY=%ROOT%\python\python.exe"
if exist "%PY%" goto run
set "PY="
"%UV%" python install --no-bin --no-registry 3.12
if errorlevel 1 goto nopython
for /f "usebackq delims=" %%P in (`""%UV%" python find --managed-python 3.12"`) do set "PY=%%P"
if not defined PY goto nopython
:run
"%PY%" "%ROOT%\bootstrap\tts_bootstrap.py" --root "%ROOT%" %*
exit /b %ERRORLEVEL%
:nopython
echo TTS Turbo setup FAILED: no Python 3.12 is bundled and uv could not download one (offline?).
echo Connect to the internet and run "Repair or change GPU build" from the Start menu.
if not exist "%ROOT%\state" mkdir "%ROOT%\state"
> "%ROOT%\state\summary.txt" echo TTS Turbo setup FAILED: could not get Python 3.12 (offline?). Run Repair when online.
echo %* | find /i "--pause" >nul && pause
exit /b 7
