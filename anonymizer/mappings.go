package anonymizer

import (
	"github.com/consentry/consentry/anonymizer/deobfuscate"
	"github.com/consentry/consentry/pipeline"
)

// Mappings finds the R8/ProGuard mapping of an app build, so that its
// crashes are deobfuscated before they are fingerprinted;
// *deobfuscate.Cache is one. Mapping must not wait: it is called for
// every crash.
type Mappings interface {
	Mapping(appID, version, build string) *deobfuscate.Mapping
}

// deobfuscate rewrites c's exception type and frames with the mapping of
// its build, if there is one. It runs on the scrubbed crash, before the
// fingerprint: a group is then the same across releases whose
// obfuscation differs. What it writes comes from the app's mapping file
// (the app's own class and method names), not from the device.
func (s *Stage) deobfuscate(c *pipeline.CrashRow) {
	if s.cfg.Mappings == nil {
		return
	}
	if m := s.cfg.Mappings.Mapping(c.AppID, c.AppVersion, c.AppBuild); m != nil {
		m.Crash(c, c.AppID)
	}
}
