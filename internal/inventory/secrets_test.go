package inventory

import (
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/virt"
)

func licensed(name, fp, sid string) virt.Domain {
	return virt.Domain{Name: name, Metadata: &virt.Metadata{Profile: "p", License: &virt.LicenseRef{Label: "k", Channel: "retail", Fingerprint: fp, SecretID: sid}}}
}

func TestFingerprintSecretsAcrossHosts(t *testing.T) {
	one := []HostDomains{
		{URI: "qemu+tls://a/system", Domains: []virt.Domain{licensed("a1", "hmac1:aa", "sid1:111111111111"), {Name: "plain"}}},
		{URI: "qemu+tls://b/system", Domains: []virt.Domain{licensed("b1", "hmac1:bb", "sid1:111111111111"), licensed("old", "hmac1:cc", "")}},
	}
	if s := FingerprintSecrets(one); len(s) != 1 || strings.Join(s[0].VMs, ",") != "a1,b1" || len(s[0].Hosts) != 2 {
		t.Errorf("one secret on two hosts: %+v", s)
	}
	if w := MixedSecretsWarning(FingerprintSecrets(one)); w != "" {
		t.Errorf("one secret: warning %q", w)
	}
	two := append(one, HostDomains{URI: "qemu+ssh://c/system", Domains: []virt.Domain{licensed("c1", "hmac1:dd", "sid1:222222222222")}})
	s := FingerprintSecrets(two)
	if len(s) != 2 || s[0].ID != "sid1:111111111111" || s[1].ID != "sid1:222222222222" || strings.Join(s[1].Hosts, ",") != "qemu+ssh://c/system" {
		t.Fatalf("two secrets: %+v", s)
	}
	w := MixedSecretsWarning(s)
	for _, want := range []string{"2 different secrets", "sid1:222222222222 (c1, on qemu+ssh://c/system)", "fingerprint_key"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q does not say %q", w, want)
		}
	}
}
