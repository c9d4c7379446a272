@echo off
rem smoke test run by `legacyvm test examples/lab smoke`
ver > C:\stage\smoke.log
systeminfo | findstr /B /C:"OS Name" >> C:\stage\smoke.log
type C:\stage\smoke.log
