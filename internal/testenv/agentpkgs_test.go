package testenv

import (
	"regexp"
	"strings"
	"testing"
)

// The cache key hashes the versions of agentPackages; build.sh downloads
// AGENT_PKGS. A package added to one and not the other would leave stale
// guests in the cache after its update.
func TestAgentPackagesMatchBuildScript(t *testing.T) {
	m := regexp.MustCompile(`(?m)^AGENT_PKGS="([^"]*)"`).FindSubmatch(buildScript)
	if m == nil {
		t.Fatal("build.sh has no AGENT_PKGS line")
	}
	if got, want := strings.Join(strings.Fields(string(m[1])), " "), strings.Join(agentPackages, " "); got != want {
		t.Errorf("build.sh AGENT_PKGS = %q, guest.go agentPackages = %q: keep them equal", got, want)
	}
}
