// Package agent proves legacyvm's guest agent features end to end (issue
// 11): exec, cp and test against a real libvirtd (internal/testenv) whose
// stand-in guests run Debian's qemu-guest-agent on the
// org.qemu.guest_agent.0 virtio-serial channel, including a guest that
// behaves badly (lying listings, endless output, an agent that stops
// answering in the middle of a copy).
package agent

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// profileSrc is a two-VM profile (qa-1, qa-2) with the agent channel, a
// memory baseline and three tests: the suite the acceptance asks for, a
// failing one, and a slow one for Ctrl-C.
func profileSrc(h *e2eutil.Host) string {
	return h.HostBlock() + fmt.Sprintf(`
snapshot_policy "clean" {
  baseline = "clean"
  memory   = true
}

vm "qa" {
  count       = 2
  os          = "win7-x64"
  cpus        = 1
  memory      = "384MiB"
  guest_agent = true
  disk {
    image   = %q
    prepare = "none"
  }
  snapshot_policy = snapshot_policy.clean
  oem_strings     = ["rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0"]
}

test "suite" {
  vms   = [vm.qa]
  reset = "both"
  step "copy_in" {
    from = "suite.sh"
    to   = "/tmp/suite.sh"
  }
  step "run" {
    command = ["sh", "/tmp/suite.sh"]
    env     = { SUITE_GREETING = "hello from the suite" }
    timeout = "2m"
  }
  step "copy_out" {
    from = "/tmp/result.txt"
  }
}

test "broken" {
  vms   = [vm.qa]
  reset = "none"
  step "run" {
    command     = ["sh", "-c", "echo about to fail; exit 3"]
    expect_exit = 0
  }
  step "copy_out" {
    from = "/tmp/never-written.txt"
  }
}

test "slow" {
  vms   = [vm.qa]
  reset = "after"
  step "run" {
    command = ["sh", "-c", "touch /tmp/marker; echo slow started; sleep 600"]
  }
}
`, h.Golden)
}

const suiteScript = `#!/bin/sh
# writes a marker (gone after the reset) and a result file
touch /tmp/marker
echo "$SUITE_GREETING"
echo "result of the suite" > /tmp/result.txt
echo suite done
`

type fixture struct {
	h   *e2eutil.Host
	dir string
}

// TestAgent applies the profile once and runs the cases one after another
// on its two VMs (the whole package boots two guests).
func TestAgent(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := e2eutil.Profile(t, "qa", map[string]string{"main.hcl": profileSrc(h), "suite.sh": suiteScript})
	h.MustRun(t, []string{"apply", "--auto-approve", dir})
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	f := &fixture{h: h, dir: dir}
	for _, c := range []struct {
		name string
		run  func(*testing.T, *fixture)
	}{
		{"Exec", testExec},
		{"ExecTimeoutKillsGuestProcess", testExecTimeout},
		{"CopyBigFileInAndOut", testCopyBigFile},
		{"CopyDirectoryRecursively", testCopyDirectory},
		{"HostileListingNeverEscapes", testHostileListing},
		{"EndlessOutputIsCapped", testEndlessOutput},
		{"AgentStopsAnsweringMidCopy", testAgentStops},
		{"SuiteOnBothVMs", testSuite},
		{"InterruptStillResets", testInterrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, vm := range []string{"qa-1", "qa-2"} {
				waitAgent(t, h, vm)
			}
			c.run(t, f)
		})
	}
}

// waitAgent waits until exec works on vm (the guest booted and qemu-ga
// answers).
func waitAgent(t *testing.T, h *e2eutil.Host, vm string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r := h.Run(t, "exec", vm, "--agent-timeout", "5s", "--", "true")
		if r.Code == 0 {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(h.SerialLog(vm))
			t.Fatalf("the guest agent of %s does not answer:\n%s\nserial log:\n%s", vm, r, b)
		}
		time.Sleep(2 * time.Second)
	}
}

func testExec(t *testing.T, f *fixture) {
	h := f.h
	r := h.MustRun(t, []string{"exec", "qa-1", "--", "echo", "hello", "from", "qa-1"})
	if r.Stdout != "hello from qa-1\n" {
		t.Errorf("exec echo: stdout %q", r.Stdout)
	}
	r = h.MustRun(t, []string{"exec", "qa-2", "--", "sh", "-c", "echo out; echo err >&2; exit 3"}, 3)
	if r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("exec with exit 3: stdout %q stderr %q", r.Stdout, r.Stderr)
	}
	r = h.MustRun(t, []string{"exec", "qa-2", "--cwd", "/tmp", "--env", "GREETING=hi there", "--", "sh", "-c", `echo "$GREETING"; pwd`})
	if r.Stdout != "hi there\n/tmp\n" {
		t.Errorf("exec --cwd --env: stdout %q", r.Stdout)
	}
	r = h.MustRun(t, []string{"exec", "-o", "json", "qa-1", "--", "echo", "json"})
	if !strings.Contains(r.Stdout, `"exit_code": 0`) || !strings.Contains(r.Stdout, `"stdout": "json\n"`) {
		t.Errorf("exec -o json:\n%s", r.Stdout)
	}
	// Streaming: the first line arrives while the command still runs.
	cmd, out, _ := h.Start(t, nil, "exec", "qa-1", "--", "sh", "-c", "echo first; sleep 8; echo second")
	deadline := time.Now().Add(7 * time.Second)
	for !strings.Contains(out.String(), "first") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := out.String(); got != "first\n" {
		t.Errorf("while the command sleeps, stdout is %q; want the first line streamed", got)
	}
	if err := cmd.Wait(); err != nil || out.String() != "first\nsecond\n" {
		t.Errorf("streamed exec ended with %v, stdout %q", err, out.String())
	}
}

func testExecTimeout(t *testing.T, f *fixture) {
	h := f.h
	t0 := time.Now()
	r := h.MustRun(t, []string{"exec", "qa-1", "--timeout", "3s", "--", "sleep", "600"}, 124)
	if !strings.Contains(r.Stderr, "timed out after 3s") || !strings.Contains(r.Stderr, "killed") {
		t.Errorf("timeout error is not clear:\n%s", r)
	}
	if d := time.Since(t0); d > 90*time.Second {
		t.Errorf("exec --timeout 3s took %s", d)
	}
	// The guest process is gone.
	r = h.Run(t, "exec", "qa-1", "--", "sh", "-c", "ps | grep -v grep | grep 'sleep 600'")
	if r.Code == 0 {
		t.Errorf("sleep 600 still runs in the guest after the timeout:\n%s", r.Stdout)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s := sha256.New()
	if _, err := io.Copy(s, fh); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(s.Sum(nil))
}

func testCopyBigFile(t *testing.T, f *fixture) {
	h := f.h
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	b := make([]byte, 50<<20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256File(t, src)
	t0 := time.Now()
	r := h.MustRun(t, []string{"cp", src, "qa-1:/tmp/big.bin"})
	t.Logf("50 MiB in: %s (%s)", time.Since(t0), strings.TrimSpace(r.Stderr))
	if !strings.Contains(r.Stderr, "sha256 verified") {
		t.Errorf("cp in does not say the checksum was verified:\n%s", r)
	}
	r = h.MustRun(t, []string{"exec", "qa-1", "--", "sha256sum", "/tmp/big.bin"})
	if !strings.HasPrefix(r.Stdout, want) {
		t.Errorf("guest sha256sum %q, host %s", r.Stdout, want)
	}
	back := filepath.Join(dir, "back.bin")
	t0 = time.Now()
	h.MustRun(t, []string{"cp", "qa-1:/tmp/big.bin", back})
	t.Logf("50 MiB out: %s", time.Since(t0))
	if got := sha256File(t, back); got != want {
		t.Errorf("copied back: sha256 %s, want %s", got, want)
	}
	h.MustRun(t, []string{"exec", "qa-1", "--", "rm", "-f", "/tmp/big.bin"})
}

func testCopyDirectory(t *testing.T, f *fixture) {
	h := f.h
	src := filepath.Join(t.TempDir(), "tree")
	files := map[string]string{
		"a.txt":              "alpha\n",
		"sub/b.txt":          "beta\n",
		"sub/deeper/c.txt":   "gamma\n",
		"with space/d e.txt": "delta\n",
	}
	for name, content := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.MustRun(t, []string{"cp", src, "qa-2:/tmp/tree"})
	r := h.MustRun(t, []string{"exec", "qa-2", "--", "cat", "/tmp/tree/sub/deeper/c.txt"})
	if r.Stdout != "gamma\n" {
		t.Errorf("sub/deeper/c.txt in the guest: %q", r.Stdout)
	}
	out := filepath.Join(t.TempDir(), "out")
	h.MustRun(t, []string{"cp", "qa-2:/tmp/tree", out})
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil || string(b) != content {
			t.Errorf("%s copied back: %q, %v", name, b, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("the empty directory was not copied back: %v", err)
	}
}

// hostileFind installs a find that lists "DIR/../../etc/x" for any DIR.
const hostileFind = `mkdir -p /tmp/hostile && echo x > /tmp/hostile/ok.txt &&
cat > /usr/sbin/find <<'END'
#!/bin/sh
printf '%s/../../etc/x\000' "$1"
END
chmod +x /usr/sbin/find`

// A guest whose listing names ../../etc/x: the copy fails and nothing is
// written outside the destination.
func testHostileListing(t *testing.T, f *fixture) {
	h := f.h
	// The agent searches its PATH (/usr/sbin first): a hostile find.
	h.MustRun(t, []string{"exec", "qa-2", "--", "sh", "-c", hostileFind})
	defer h.MustRun(t, []string{"exec", "qa-2", "--", "rm", "-f", "/usr/sbin/find"})
	base := t.TempDir()
	dst := filepath.Join(base, "a", "b", "results")
	r := h.Run(t, "cp", "qa-2:/tmp/hostile", dst)
	if r.Code == 0 || !strings.Contains(r.Stderr, "unsafe file name from the guest") || !strings.Contains(r.Stderr, "../../etc/x") {
		t.Errorf("copy of a hostile listing:\n%s", r)
	}
	err := filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			t.Errorf("file written for a hostile listing: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "a", "etc", "x")); err == nil {
		t.Errorf("../../etc/x escaped the destination")
	}
}

// A guest that prints forever: legacyvm stops at --max-output and kills it.
func testEndlessOutput(t *testing.T, f *fixture) {
	h := f.h
	r := h.Run(t, "exec", "qa-1", "--max-output", "1MiB", "--", "yes", "endless")
	if r.Code != 1 || !strings.Contains(r.Stderr, "output limit exceeded") {
		t.Errorf("exec yes:\n exit %d, stderr %q", r.Code, r.Stderr)
	}
	if len(r.Stdout) > 1<<20 {
		t.Errorf("%d bytes passed on, more than --max-output 1MiB", len(r.Stdout))
	}
	if len(r.Stdout) < 64<<10 {
		t.Errorf("only %d bytes of output before the cap", len(r.Stdout))
	}
	if r := h.Run(t, "exec", "qa-1", "--", "sh", "-c", "ps | grep -v grep | grep 'yes endless'"); r.Code == 0 {
		t.Errorf("yes still runs in the guest:\n%s", r.Stdout)
	}
}

// An agent that stops answering in the middle of a copy: cp fails within a
// bounded time, naming the agent; when the agent is back, it works again.
func testAgentStops(t *testing.T, f *fixture) {
	h := f.h
	src := filepath.Join(t.TempDir(), "big.bin")
	b := make([]byte, 40<<20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// In the guest, in the background: stop qemu-ga once the copy has
	// written its first bytes (the destination exists and is not empty;
	// a fixed delay raced with a slow start of cp on a loaded machine),
	// resume it 30 s later.
	h.MustRun(t, []string{"exec", "qa-2", "--", "sh", "-c",
		`rm -f /tmp/stalled.bin; (i=0; while [ ! -s /tmp/stalled.bin ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; kill -STOP $(pidof qemu-ga); sleep 30; kill -CONT $(pidof qemu-ga)) >/dev/null 2>&1 </dev/null &`})
	t0 := time.Now()
	r := h.Run(t, "cp", "--agent-timeout", "5s", src, "qa-2:/tmp/stalled.bin")
	took := time.Since(t0)
	if r.Code == 0 {
		t.Fatalf("cp succeeded although the agent stopped (took %s): make the copy longer\n%s", took, r)
	}
	if !strings.Contains(r.Stderr, "guest agent not responding") {
		t.Errorf("cp with a silent agent: error does not say so:\n%s", r)
	}
	if took > 45*time.Second {
		t.Errorf("cp took %s to give up on a silent agent (--agent-timeout 5s)", took)
	}
	t.Logf("cp gave up after %s: %s", took, strings.TrimSpace(r.Stderr))
	waitAgent(t, h, "qa-2")
	h.MustRun(t, []string{"exec", "qa-2", "--", "rm", "-f", "/tmp/stalled.bin"})
}

// junitDoc is the part of the JUnit report the test reads.
type junitDoc struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Name      string    `xml:"name,attr"`
			ClassName string    `xml:"classname,attr"`
			Failure   *struct{} `xml:"failure"`
			Error     *struct{} `xml:"error"`
			Skipped   *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, p string) junitDoc {
	t.Helper()
	xsd, err := filepath.Abs("../../cmd/legacyvm/testdata/junit.xsd")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xmllint", "--noout", "--schema", xsd, p).CombinedOutput(); err != nil {
		t.Fatalf("JUnit report does not validate against %s: %v\n%s", xsd, err, out)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func markerGone(t *testing.T, h *e2eutil.Host, vm string) {
	t.Helper()
	waitAgent(t, h, vm)
	if r := h.Run(t, "exec", vm, "--", "test", "-e", "/tmp/marker"); r.Code != 1 {
		t.Errorf("%s: /tmp/marker after the reset: exit %d (want 1: the reset removed it)\n%s", vm, r.Code, r)
	}
}

func testSuite(t *testing.T, f *fixture) {
	h := f.h
	res := t.TempDir()
	junit := filepath.Join(res, "junit.xml")
	t0 := time.Now()
	r := h.MustRun(t, []string{"test", f.dir, "suite", "--results", res, "--junit", junit, "--parallelism", "2"})
	t.Logf("test suite on 2 VMs: %s", time.Since(t0))
	for _, vm := range []string{"qa-1", "qa-2"} {
		if !strings.Contains(r.Stderr, "[suite/"+vm+"] hello from the suite") {
			t.Errorf("no prefixed, streamed output of %s:\n%s", vm, r.Stderr)
		}
		b, err := os.ReadFile(filepath.Join(res, "suite", vm, "result.txt"))
		if err != nil || string(b) != "result of the suite\n" {
			t.Errorf("%s result file: %q, %v", vm, b, err)
		}
		if b, err := os.ReadFile(filepath.Join(res, "suite", vm, "02-run.log")); err != nil || !strings.Contains(string(b), "suite done") {
			t.Errorf("%s run log: %q, %v", vm, b, err)
		}
	}
	d := readJUnit(t, junit)
	cases := 0
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			cases++
			if c.Failure != nil || c.Error != nil || c.Skipped != nil {
				t.Errorf("test case %s/%s did not pass", c.ClassName, c.Name)
			}
		}
	}
	if len(d.Suites) != 2 || cases != 6 {
		t.Errorf("JUnit report: %d suites, %d test cases; want one suite per VM and one case per VM and step (2, 6)", len(d.Suites), cases)
	}
	for _, vm := range []string{"qa-1", "qa-2"} {
		markerGone(t, h, vm)
	}

	// A failing step: exit 1, the failure in the report, later steps skipped.
	r = h.MustRun(t, []string{"test", f.dir, "broken", "--results", res, "--junit", junit, "-o", "json"}, 1)
	if !strings.Contains(r.Stdout, `"status": "failed"`) || !strings.Contains(r.Stdout, "exit code 3, want 0") || !strings.Contains(r.Stdout, `"status": "skipped"`) {
		t.Errorf("test broken -o json:\n%s", r.Stdout)
	}
	d = readJUnit(t, junit)
	failures, skipped := 0, 0
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures++
			}
			if c.Skipped != nil {
				skipped++
			}
		}
	}
	if failures != 2 || skipped != 2 {
		t.Errorf("broken: %d failures and %d skipped in the report, want 2 and 2", failures, skipped)
	}
}

// Ctrl-C while a step runs: the guest process is killed and the after
// reset still happens (the marker the step wrote is gone).
func testInterrupt(t *testing.T, f *fixture) {
	h := f.h
	cmd, out, errb := h.Start(t, nil, "test", f.dir, "slow", "--results", t.TempDir())
	deadline := time.Now().Add(3 * time.Minute)
	for !(strings.Contains(errb.String(), "[slow/qa-1] slow started") && strings.Contains(errb.String(), "[slow/qa-2] slow started")) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the slow step did not start on both VMs:\n%s", errb.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("test exited 0 after Ctrl-C")
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("test did not end after Ctrl-C:\n%s", errb.String())
	}
	for _, vm := range []string{"qa-1", "qa-2"} {
		if !strings.Contains(errb.String(), "[slow/"+vm+"] reset to baseline") {
			t.Errorf("%s was not reset after Ctrl-C:\n%s\n%s", vm, errb.String(), out.String())
		}
		markerGone(t, h, vm)
	}
	if bytes.Contains([]byte(errb.String()), []byte("panic")) {
		t.Errorf("panic:\n%s", errb.String())
	}
}
