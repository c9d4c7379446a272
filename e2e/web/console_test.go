package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
	webconsole "github.com/legacyvm/legacyvm/internal/web"
)

// chromiumPath is Debian's Chromium (scripts/setup-host.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// listen is where serve listens inside the harness's namespace.
const listen = "127.0.0.1:8470"

// quietGuest: no network services in the stand-in guest, a heartbeat on
// its console.
var quietGuest = []string{"rig.ip=none", "rig.listen=0", "rig.control=0", "rig.answercd=0", "rig.hb=2"}

func profile(t *testing.T, h *e2eutil.Host, name string) string {
	q := make([]string, len(quietGuest))
	for i, w := range quietGuest {
		q[i] = strconv.Quote(w)
	}
	return e2eutil.Profile(t, name, map[string]string{"main.hcl": h.HostBlock() + fmt.Sprintf(`
snapshot_policy "live" {
  memory = true
}

vm %q {
  os     = "win7-x64"
  cpus   = 1
  memory = "256MiB"
  disk {
    image   = %q
    prepare = "none"
  }
  snapshot_policy = snapshot_policy.live
  oem_strings = [%s]
}
`, name, h.Golden, strings.Join(q, ", "))})
}

// server is legacyvm serve running in the harness's namespace.
type server struct {
	cmd    *exec.Cmd
	stderr *e2eutil.SyncBuffer
	done   chan struct{}
}

func startServer(t *testing.T, h *e2eutil.Host, webDir string, profiles ...string) *server {
	t.Helper()
	args := append([]string{"netns", "exec", h.Env.NetNS, e2eutil.Binary(t), "serve", "--listen", listen, "--web-dir", webDir}, profiles...)
	cmd := exec.Command("ip", args...)
	cmd.Env = h.Environ()
	s := &server{cmd: cmd, stderr: &e2eutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(s.stderr.String(), "serving the web console") {
		select {
		case <-s.done:
			t.Fatalf("legacyvm serve exited:\n%s", s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("legacyvm serve did not start:\n%s", s.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// browser starts headless Chromium inside the namespace.
func browser(t *testing.T, h *e2eutil.Host, out *e2eutil.SyncBuffer) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Unavailable(t, "chromium", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
		chromedp.CombinedOutput(out),
		// ip netns exec runs Chromium in the harness's namespace; it execs,
		// so the debugging pipe (fds 3 and 4) is inherited.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			ip, err := exec.LookPath("ip")
			if err != nil {
				panic(err)
			}
			cmd.Args = append([]string{"ip", "netns", "exec", h.Env.NetNS}, cmd.Args...)
			cmd.Path = ip
		}),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	return ctx
}

// step runs one browser action with its own deadline and says what the
// page showed when it fails.
func step(t *testing.T, ctx context.Context, what string, a chromedp.Action[chromedp.Void], browserOut func() string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, a); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		t.Fatalf("%s: %v\npage:\n%s\nbrowser output:\n%s", what, err, body, browserOut())
	}
}

// clickLive clicks the element sel finds, in one step inside the page: the
// VM table and the profile list are redrawn every few seconds, so a node
// chromedp found can be gone by the time it clicks it ("Could not find
// node with given id").
func clickLive(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	q, err := json.Marshal(sel)
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, what, `(() => { const b = document.querySelector(`+string(q)+`); if (!b || b.disabled) return false; b.click(); return true; })()`, 90*time.Second)
}

// poll evaluates expr until it is true.
func poll(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: not within %s; the page shows:\n%s", what, timeout, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// login opens the page and logs in with token.
func login(t *testing.T, ctx context.Context, token string, browserOut func() string) {
	t.Helper()
	step(t, ctx, "open the page", chromedp.Navigate("http://"+listen+"/"), browserOut)
	step(t, ctx, "find the login form", chromedp.WaitVisible(chromedp.ID("token")), browserOut)
	step(t, ctx, "type the token", chromedp.SendKeys(chromedp.ID("token"), token), browserOut)
	step(t, ctx, "log in", chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)), browserOut)
	step(t, ctx, "see the VM table", chromedp.WaitVisible(chromedp.ID("vms")), browserOut)
}

// An admin applies a profile that serve serves from the page (after a
// confirmation): its VM appears running in the table; then destroys it:
// the VM is gone from libvirt. The audit log has both by the admin's token.
func TestAdminAppliesAndDestroysFromThePage(t *testing.T) {
	h := e2eutil.NewHost(t)
	dir := profile(t, h, "wcgamma")
	t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	webDir := t.TempDir()
	tok := h.MustRun(t, []string{"token", "create", "--role", "admin", "--name", "e2e-admin", "--web-dir", webDir})
	token := strings.TrimSpace(tok.Stdout)
	srv := startServer(t, h, webDir, dir)
	var chromeOut e2eutil.SyncBuffer
	ctx := browser(t, h, &chromeOut)
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	login(t, ctx, token, chromeOut.String)

	step(t, ctx, "see the served profile", chromedp.WaitVisible(chromedp.CSS(`#profile-list li[data-profile="wcgamma"] button.apply`)), chromeOut.String)
	clickLive(t, ctx, "click apply", `#profile-list li[data-profile="wcgamma"] button.apply`)
	step(t, ctx, "see the confirmation", chromedp.WaitVisible(chromedp.ID("confirm-ok")), chromeOut.String)
	step(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")), chromeOut.String)
	poll(t, ctx, "apply done", `document.getElementById('profile-result').textContent.startsWith('apply wcgamma: done')`, 5*time.Minute)
	poll(t, ctx, "wcgamma in the table, running", `(() => {
		const st = document.querySelector('tr[data-vm="wcgamma"] td.state');
		return !!st && st.dataset.state === 'running';
	})()`, 60*time.Second)
	if r := h.MustRun(t, []string{"status", "-o", "json", dir}); !strings.Contains(r.Stdout, `"wcgamma"`) {
		t.Errorf("legacyvm status after the page's apply:\n%s", r.Stdout)
	}

	clickLive(t, ctx, "click destroy", `#profile-list li[data-profile="wcgamma"] button.destroy`)
	step(t, ctx, "see the confirmation", chromedp.WaitVisible(chromedp.ID("confirm-ok")), chromeOut.String)
	step(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")), chromeOut.String)
	poll(t, ctx, "destroy done", `document.getElementById('profile-result').textContent.startsWith('destroy wcgamma: done')`, 3*time.Minute)
	poll(t, ctx, "wcgamma gone from the table", `!document.querySelector('tr[data-vm="wcgamma"]')`, 60*time.Second)

	audit, err := os.ReadFile(filepath.Join(webDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"action":"apply","profile":"wcgamma"`, `"action":"destroy","profile":"wcgamma"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	e2eutil.NoSecret(t, token, map[string]string{"serve log": srv.stderr.String(), "chromium output": chromeOut.String(), "audit log": string(audit)})
}

// A tester logs in with a token, sees both VMs with their state and a
// screenshot, resets one and watches its state change through the
// events, and opens the other's console: noVNC draws the guest's
// framebuffer on its canvas.
func TestWebConsoleInChromium(t *testing.T) {
	if !webconsole.ConsoleAssetsBuilt() {
		// The binary the test builds embeds what this package sees.
		t.Fatal("noVNC is not in internal/web/assets/novnc: run make web (scripts/web-assets.sh) first")
	}
	h := e2eutil.NewHost(t)
	for _, name := range []string{"wcalpha", "wcbeta"} {
		dir := profile(t, h, name)
		h.MustRun(t, []string{"apply", "--auto-approve", dir})
		t.Cleanup(func() { h.Run(t, "destroy", "--auto-approve", dir) })
	}
	for _, name := range []string{"wcalpha", "wcbeta"} {
		h.WaitSerial(t, name, `RIG hb n=1 `, 120*time.Second)
	}

	webDir := t.TempDir()
	tok := h.MustRun(t, []string{"token", "create", "--role", "tester", "--name", "e2e-tester", "--web-dir", webDir})
	token := strings.TrimSpace(tok.Stdout)
	if !strings.HasPrefix(token, "lvmt_") || strings.Contains(token, "\n") {
		t.Fatalf("token create printed %q, want the token alone", tok.Stdout)
	}
	srv := startServer(t, h, webDir)
	var chromeOut e2eutil.SyncBuffer
	ctx := browser(t, h, &chromeOut)
	ctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()

	url := "http://" + listen + "/"
	step(t, ctx, "open the page", chromedp.Navigate(url), chromeOut.String)
	step(t, ctx, "find the login form", chromedp.WaitVisible(chromedp.ID("token")), chromeOut.String)
	step(t, ctx, "type the token", chromedp.SendKeys(chromedp.ID("token"), token), chromeOut.String)
	// A click, as a user does (form.submit() would skip the page's
	// submit handler).
	step(t, ctx, "log in", chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)), chromeOut.String)
	step(t, ctx, "see the VM table", chromedp.WaitVisible(chromedp.ID("vms")), chromeOut.String)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if strings.Contains(loc, token) || strings.Contains(loc, "lvmt_") {
		t.Errorf("the token is in the URL: %s", loc)
	}

	// Both VMs, running, each with a non-empty screenshot.
	poll(t, ctx, "both VMs running with a screenshot", `(() => {
		const ok = (vm) => {
			const tr = document.querySelector('tr[data-vm="' + vm + '"]');
			if (!tr) return false;
			const st = tr.querySelector('td.state');
			const img = tr.querySelector('img.thumb');
			return st && st.dataset.state === 'running' && img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0;
		};
		return ok('wcalpha') && ok('wcbeta');
	})()`, 90*time.Second)

	// Reset wcalpha: record every state the row shows while it runs.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.__states = [];
		const rows = document.getElementById('vm-rows');
		new MutationObserver(() => {
			const st = document.querySelector('tr[data-vm="wcalpha"] td.state');
			if (st) window.__states.push(st.textContent);
		}).observe(rows, {childList: true, subtree: true, characterData: true});
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	clickLive(t, ctx, "click reset", `tr[data-vm="wcalpha"] button.reset`)
	step(t, ctx, "see the confirmation", chromedp.WaitVisible(chromedp.ID("confirm-ok")), chromeOut.String)
	step(t, ctx, "confirm", chromedp.Click(chromedp.ID("confirm-ok")), chromeOut.String)
	poll(t, ctx, "the reset's events", `!!document.querySelector('#events li[data-vm="wcalpha"][data-phase="begin"]') &&
		!!document.querySelector('#events li[data-vm="wcalpha"][data-phase="done"]')`, 120*time.Second)
	poll(t, ctx, "wcalpha running again after the reset", `document.querySelector('tr[data-vm="wcalpha"] td.state').dataset.state === 'running' &&
		!document.querySelector('tr[data-vm="wcalpha"] td.state').dataset.activity`, 60*time.Second)
	states, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__states`))
	if err != nil {
		t.Fatal(err)
	}
	sawReset := false
	for _, s := range states {
		if strings.Contains(s, "(reset)") {
			sawReset = true
		}
	}
	if !sawReset || len(states) == 0 || !strings.HasPrefix(states[len(states)-1], "running") {
		t.Errorf("states shown during the reset: %q; want a \"(reset)\" state, then running", states)
	}
	events, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("events")))
	t.Logf("events on the page:\n%s", events)

	// The console of wcbeta: noVNC draws the guest's framebuffer.
	clickLive(t, ctx, "open the console", `tr[data-vm="wcbeta"] button.console`)
	poll(t, ctx, "the console connects", `document.getElementById('console').dataset.connected === 'yes'`, 60*time.Second)
	poll(t, ctx, "the guest's framebuffer on the canvas", `(() => {
		const c = document.querySelector('#screen canvas');
		if (!c || c.width < 100 || c.height < 100) return false;
		const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let lit = 0;
		for (let i = 0; i < d.length; i += 4) if (d[i] > 16 || d[i+1] > 16 || d[i+2] > 16) lit++;
		return lit > 100;
	})()`, 60*time.Second)

	// UPDATE_SCREENSHOT=1 writes the README's picture of the page: the
	// table, the events of the reset and the console.
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(png), "\x89PNG") {
			t.Fatalf("the screenshot is not a PNG")
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "web-console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The audit log has the reset and the console, by the token's id; the
	// token itself is nowhere: not in serve's log, Chromium's output or the
	// audit log, and only hashed in the token store.
	audit, err := os.ReadFile(filepath.Join(webDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"action":"login"`, `"action":"reset","profile":"wcalpha","vm":"wcalpha"`, `"action":"console","profile":"wcbeta","vm":"wcbeta"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	store, _ := os.ReadFile(filepath.Join(webDir, "tokens.json"))
	e2eutil.NoSecret(t, token, map[string]string{
		"serve log": srv.stderr.String(), "chromium output": chromeOut.String(), "audit log": string(audit),
		"token store": string(store), "token create stderr": tok.Stderr,
	})
}
