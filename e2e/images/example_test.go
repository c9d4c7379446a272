package images

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
)

// TestGoldenImageExample runs examples/golden-image the way its comment
// says: image build with the ISO and its checksum as variables, then apply
// with the two keys; both clones specialize with their own names.
func TestGoldenImageExample(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)
	w := e2eutil.NewSecretWatch()
	_, here, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(here), "..", "..", "examples", "golden-image")
	main, err := os.ReadFile(filepath.Join(src, "main.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(src, "drivers", "README.TXT"))
	if err != nil {
		t.Fatal(err)
	}
	dir := e2eutil.Profile(t, "golden-image", map[string]string{"main.hcl": string(main), "host.hcl": h.HostBlock()})
	if err := os.MkdirAll(filepath.Join(dir, "drivers"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "drivers", "README.TXT"), readme, 0o644); err != nil {
		t.Fatal(err)
	}
	vars := []string{"--var", "iso=" + h.Guest.Installer, "--var", "iso_sha256=" + fileSHA256(t, h.Guest.Installer)}
	env := []string{"GOLD_KEY_1=" + key3, "GOLD_KEY_2=" + key4}

	r := h.RunWatched(t, w, nil, 0, append([]string{"image", "build", dir, "w7pro"}, vars...)...)
	if !strings.Contains(r.Stdout, "Built image w7pro version 1") {
		t.Errorf("build:\n%s", r)
	}
	recs := map[string]*e2eutil.SerialRecorder{"gold-1": e2eutil.RecordSerial(h.SerialLog("gold-1")), "gold-2": e2eutil.RecordSerial(h.SerialLog("gold-2"))}
	h.RunWatched(t, w, env, 0, append([]string{"apply", "--auto-approve", dir}, vars...)...)
	for _, vm := range []string{"gold-1", "gold-2"} {
		log := strings.Join(recs[vm].Runs(), "\n-----\n")
		w.Add("serial "+vm, log)
		e2eutil.InOrder(t, vm, log, "RIG answer file=Unattend.xml computername="+strings.ToUpper(vm), "RIG specialize generalized=yes")
	}
	h.RunWatched(t, w, nil, 0, append([]string{"plan", dir}, vars...)...)
	h.RunWatched(t, w, nil, 0, append([]string{"destroy", "--auto-approve", dir}, vars...)...)
	h.RunWatched(t, w, nil, 0, append([]string{"image", "delete", dir, "w7pro"}, vars...)...)
	w.Check(t, key1, key2, key3, key4)
}
