; TTS Turbo Setup: per-user (no admin), 64-bit, Unicode. Compiles warning-free (makensis -WX) with Debian's
; makensis on Linux and with NSIS on Windows. build_payload.py stages the payload and passes:
;   -DVERSION=0.1.0 -DVERSION_QUAD=0.1.0.0 -DPAYLOAD=<staging dir> -DOUTFILE=<TTS-Turbo-Setup-0.1.0.exe>
; Command-line switches (besides NSIS's /S and /D=dir):
;   /NOBOOTSTRAP   copy files, shortcuts and registry entries only; do not create the Python environment
;   /GPU=auto|cpu|cu126|cu128   torch build for the bootstrap (default auto: decided from nvidia-smi)

Unicode true
Target amd64-unicode

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

!ifndef VERSION | VERSION_QUAD | PAYLOAD | OUTFILE
  !error "define VERSION, VERSION_QUAD, PAYLOAD and OUTFILE (see installer/build_payload.py)"
!endif

!define APPNAME "TTS Turbo"
!define APPKEY "TTSTurbo"
!define UNINSTKEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APPKEY}"
!define SMDIR "$SMPROGRAMS\${APPNAME}"
!define GUIEXE "$INSTDIR\env\Scripts\tts-turbo-gui.exe"

Name "${APPNAME} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APPKEY}"
InstallDirRegKey HKCU "Software\${APPKEY}" "InstallDir"
RequestExecutionLevel user
SetCompressor /SOLID lzma
ManifestDPIAware true
ShowInstDetails show
ShowUninstDetails show
BrandingText "${APPNAME} ${VERSION}"

VIProductVersion "${VERSION_QUAD}"
VIAddVersionKey "ProductName" "${APPNAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APPNAME} Setup"
VIAddVersionKey "CompanyName" "${APPNAME} project"
VIAddVersionKey "LegalCopyright" "${APPNAME} project; bundled components under their own licences"

!define MUI_ICON "${PAYLOAD}/assets/ttsturbo.ico"
!define MUI_UNICON "${PAYLOAD}/assets/ttsturbo.ico"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APPNAME}"
!define MUI_FINISHPAGE_RUN_FUNCTION LaunchApp

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_LICENSE "${PAYLOAD}/LICENSE.txt"
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var GpuChoice
Var SkipBootstrap

Function .onInit
  SetShellVarContext current
  ${GetParameters} $R0
  StrCpy $SkipBootstrap 0
  ClearErrors
  ${GetOptions} $R0 "/NOBOOTSTRAP" $R1
  ${IfNot} ${Errors}
    StrCpy $SkipBootstrap 1
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/GPU=" $GpuChoice
  ${If} ${Errors}
  ${OrIf} $GpuChoice == ""
    StrCpy $GpuChoice "auto"
  ${EndIf}
FunctionEnd

Function LaunchApp
  ${If} ${FileExists} "${GUIEXE}"
    Exec '"${GUIEXE}"'
  ${EndIf}
FunctionEnd

Section "${APPNAME} (required)" SecApp
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${PAYLOAD}/*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  WriteRegStr HKCU "Software\${APPKEY}" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "Software\${APPKEY}" "Version" "${VERSION}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayName" "${APPNAME}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTKEY}" "Publisher" "${APPNAME} project"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\assets\ttsturbo.ico"
  WriteRegStr HKCU "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoRepair" 1

  CreateDirectory "${SMDIR}"
  CreateShortCut "${SMDIR}\${APPNAME}.lnk" "${GUIEXE}" "" "$INSTDIR\assets\ttsturbo.ico"
  CreateShortCut "${SMDIR}\Repair or change GPU build.lnk" "$INSTDIR\bootstrap\bootstrap.cmd" \
    "--pause" "$INSTDIR\assets\ttsturbo.ico"
  CreateShortCut "${SMDIR}\Uninstall ${APPNAME}.lnk" "$INSTDIR\uninstall.exe"
SectionEnd

Section "Desktop shortcut" SecDesktop
  CreateShortCut "$DESKTOP\${APPNAME}.lnk" "${GUIEXE}" "" "$INSTDIR\assets\ttsturbo.ico"
SectionEnd

; Runs last so the environment is built after every file and shortcut is in place.
Section "-Bootstrap"
  ${If} $SkipBootstrap == 1
    DetailPrint "Bootstrap skipped (/NOBOOTSTRAP)."
  ${Else}
    DetailPrint "Creating the Python environment and choosing the torch build (GPU: $GpuChoice)..."
    nsExec::ExecToLog '"$SYSDIR\cmd.exe" /c ""$INSTDIR\bootstrap\bootstrap.cmd" --gpu $GpuChoice"'
    Pop $0
    Call ReadSummary
    ${If} $0 != 0
      MessageBox MB_OK|MB_ICONEXCLAMATION "$1$\r$\n$\r$\nLog: $INSTDIR\logs\bootstrap.log$\r$\nRun $\"Repair or change GPU build$\" from the Start menu to retry." /SD IDOK
      SetErrorLevel $0
    ${Else}
      MessageBox MB_OK|MB_ICONINFORMATION "$1" /SD IDOK
    ${EndIf}
  ${EndIf}
  ${GetSize} "$INSTDIR" "/S=0K" $2 $3 $4
  IntFmt $2 "0x%08X" $2
  WriteRegDWORD HKCU "${UNINSTKEY}" "EstimatedSize" "$2"
SectionEnd

; $1 = the bootstrap's headline (first line of state\summary.txt), or a generic line when it wrote none.
Function ReadSummary
  StrCpy $1 "${APPNAME} setup finished with code $0."
  ClearErrors
  FileOpen $2 "$INSTDIR\state\summary.txt" r
  ${IfNot} ${Errors}
    FileRead $2 $1
    FileClose $2
  ${EndIf}
FunctionEnd

; Removes exactly what Setup and the bootstrap created: never a recursive delete of $INSTDIR itself, so a
; user who picked an existing folder (/D=) keeps their other files.
Section "Uninstall"
  SetShellVarContext current
  Delete "${SMDIR}\${APPNAME}.lnk"
  Delete "${SMDIR}\Repair or change GPU build.lnk"
  Delete "${SMDIR}\Uninstall ${APPNAME}.lnk"
  RMDir "${SMDIR}"
  Delete "$DESKTOP\${APPNAME}.lnk"

  !macro _RemoveDir NAME
    RMDir /r "$INSTDIR\${NAME}"
  !macroend
  !insertmacro _RemoveDir "env"
  !insertmacro _RemoveDir "runtime"
  !insertmacro _RemoveDir "python"
  !insertmacro _RemoveDir "python-managed"
  !insertmacro _RemoveDir "wheelhouse"
  !insertmacro _RemoveDir "app"
  !insertmacro _RemoveDir "lock"
  !insertmacro _RemoveDir "bootstrap"
  !insertmacro _RemoveDir "assets"
  !insertmacro _RemoveDir "logs"
  !insertmacro _RemoveDir "state"
  Delete "$INSTDIR\manifest.json"
  Delete "$INSTDIR\LICENSE.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  DeleteRegKey HKCU "${UNINSTKEY}"
  DeleteRegKey HKCU "Software\${APPKEY}"
SectionEnd
