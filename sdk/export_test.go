package sdk

// crashApps are the apps the crash helper can run, by name: code that
// panics under RecoverPanic, registered by the external tests (package
// sdk_test, crashapp_test.go) so that its frames are not the SDK's own.
var crashApps = map[string]func(*Client){}

// RegisterCrashApp registers run as the crash helper's app name.
func RegisterCrashApp(name string, run func(*Client)) { crashApps[name] = run }
