package libvirt_test

import (
	"os"
	"testing"
)

// devLibvirt returns the URI of a private libvirtd and the stand-in guest
// image to test against, from LEGACYVM_TEST_LIBVIRT_URI and
// LEGACYVM_TEST_GUEST. With CI=true a missing daemon is a failure.
//
// TODO(testenv): replace with testenv.Libvirt(t) / testenv.Guest(t) once
// internal/testenv lands.
func devLibvirt(t *testing.T) (uri, guest string) {
	t.Helper()
	uri, guest = os.Getenv("LEGACYVM_TEST_LIBVIRT_URI"), os.Getenv("LEGACYVM_TEST_GUEST")
	if uri == "" || guest == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("libvirt is not available: set LEGACYVM_TEST_LIBVIRT_URI and LEGACYVM_TEST_GUEST")
		}
		t.Skip("libvirt is not available: set LEGACYVM_TEST_LIBVIRT_URI and LEGACYVM_TEST_GUEST")
	}
	return uri, guest
}
