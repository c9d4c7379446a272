// Package web proves the web console end to end (issue 16): legacyvm serve
// and a real Chromium (Debian's, driven by chromedp) against a real
// libvirtd (internal/testenv) with two stand-in guests.
//
// Network safety: the server and Chromium both run inside the harness's
// network namespace (ip netns exec), which holds only its loopback and the
// libvirt bridges the test created. The browser talks to 127.0.0.1 of that
// namespace; chromedp talks to Chromium over a pipe (--remote-debugging-
// pipe), not a port; nothing Chromium might try (background networking is
// switched off too) can leave the namespace, which has no route out.
package web

import (
	"os"
	"testing"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
