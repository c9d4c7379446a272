// Command legacyvm keeps legacy Windows 7 virtual machines alive safely:
// declared in HCL profiles, provisioned through libvirt on isolated networks,
// protected by snapshot policies, with their licences kept secret.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], systemStreams()))
}

// run executes the CLI and returns the process exit code. The first SIGINT or
// SIGTERM cancels the command's context so in-flight work can finish and
// stop; a second one exits at once.
func run(args []string, io *IOStreams) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				// A hint for a person at a terminal; under a service
				// manager stderr is a log (daemon --log-json: JSON lines).
				if io.ErrTTY {
					io.Status("stopping after the work in progress (press Ctrl-C again to abort)")
				}
				cancel()
				continue
			}
			os.Exit(130)
		}
	}()
	root := newRootCmd(newFactory(io))
	root.SetArgs(terraformStyleFlags(args))
	return exitCode(root.ExecuteContext(ctx), io)
}

// terraformStyleFlags accepts Terraform's single-dash spelling of the
// variable flags (-var k=v, -var-file=f) and of fmt -recursive that
// profile authors type by habit, by rewriting them to --var and --var-file. Arguments after "--"
// are left alone.
func terraformStyleFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		switch {
		case a == "-var" || a == "-var-file" || strings.HasPrefix(a, "-var=") || strings.HasPrefix(a, "-var-file="),
			a == "-recursive":
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}
