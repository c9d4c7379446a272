package hostcheck

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:0016":                         "127.0.0.1:22",
		"0101500A:2CA9":                         "10.80.1.1:11433",
		"00000000000000000000000000000000:0035": "[::]:53",
		"0000000000000000FFFF00000101500A:0050": "10.80.1.1:80",
	} {
		a, p, ok := parseProcAddr(in)
		if got := netip.AddrPortFrom(a, p).String(); !ok || got != want {
			t.Errorf("parseProcAddr(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
}

func TestForwardPolicyFinding(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		sev   Severity
		want  string
	}{
		{"docker, policy accept", "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N DOCKER\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n", SeverityWarn, "chain DOCKER)"},
		{"docker, policy drop", "-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N DOCKER\n", SeverityOK, "FORWARD policy DROP (Docker chains present)"},
		{"no docker", "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N LIBVIRT_FWX\n", SeverityOK, "no Docker chains"},
		{"nothing", "", SeverityInfo, "no FORWARD policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := forwardPolicyFinding(tt.rules)
			if f.Severity != tt.sev || !strings.Contains(f.Message, tt.want) {
				t.Errorf("got %s %q, want %s containing %q", f.Severity, f.Message, tt.sev, tt.want)
			}
			if f.Severity == SeverityWarn && !strings.Contains(f.Fix, "iptables -P FORWARD DROP") {
				t.Errorf("fix = %q", f.Fix)
			}
		})
	}
}
