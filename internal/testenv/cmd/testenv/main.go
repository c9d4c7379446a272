// Command testenv runs legacyvm's hermetic libvirt harness by hand, in CI
// scripts and in the README's demo: a private libvirtd inside a network
// namespace of its own, so nothing touches the host's networks.
//
//	testenv up                 start an instance, print its environment, run until SIGINT/SIGTERM
//	testenv exec -- CMD ARGS   start an instance, run CMD with LIBVIRT_DEFAULT_URI and
//	                           LEGACYVM_NETNS set, tear down, exit with CMD's status
//	testenv reap               remove instances whose owner process is dead
//	testenv guest              build (or find) the stand-in guest and print its paths
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/testenv"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// exitError carries a status to exit with (the command's own).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(args []string) int {
	root := &cobra.Command{
		Use:           "testenv",
		Short:         "Private libvirtd in its own network namespace, for legacyvm's tests and demos",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var accel string
	root.PersistentFlags().StringVar(&accel, "accel", "", "force the accelerator: tcg or kvm (default: $LEGACYVM_TEST_ACCEL, else detect)")
	root.AddCommand(newCmdUp(&accel), newCmdExec(&accel), newCmdReap(), newCmdGuest())
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case err != nil:
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	return 0
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// start starts an instance; its own start is not cancelled by the first
// Ctrl-C (that would leave half an instance; Stop follows anyway).
func start(ctx context.Context, accel string) (*testenv.Env, error) {
	t0 := time.Now()
	e, err := testenv.Start(context.WithoutCancel(ctx), testenv.Options{Accel: accel, Logf: logf})
	if err != nil {
		return nil, err
	}
	logf("testenv: instance %s up in %.2fs (dir %s)", e.NetNS, time.Since(t0).Seconds(), e.Dir)
	return e, nil
}

func stopEnv(e *testenv.Env) error {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		return fmt.Errorf("stop instance %s: %w", e.NetNS, err)
	}
	logf("testenv: instance %s stopped in %.2fs", e.NetNS, time.Since(t0).Seconds())
	return nil
}

func newCmdUp(accel *string) *cobra.Command {
	return &cobra.Command{
		Use:   "up",
		Short: "Start an instance, print its environment, run until SIGINT or SIGTERM, then tear down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := start(cmd.Context(), *accel)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "export LIBVIRT_DEFAULT_URI='%s'\n", e.URI)
			fmt.Fprintf(out, "export LEGACYVM_NETNS='%s'\n", e.NetNS)
			fmt.Fprintf(out, "export LEGACYVM_TEST_ACCEL='%s'\n", accelName(e.Accel))
			logf("testenv: running; Ctrl-C or SIGTERM tears it down (run commands on the host side of its bridges with: ip netns exec %s CMD)", e.NetNS)
			<-cmd.Context().Done()
			return stopEnv(e)
		},
	}
}

// accelName maps a domain type back to the LEGACYVM_TEST_ACCEL spelling.
func accelName(domainType string) string {
	if domainType == "kvm" {
		return "kvm"
	}
	return "tcg"
}

func newCmdExec(accel *string) *cobra.Command {
	return &cobra.Command{
		Use:   "exec -- CMD [ARG...]",
		Short: "Start an instance, run CMD against it, tear down and exit with CMD's status",
		Long: `Start an instance, run CMD (in the root namespace) with LIBVIRT_DEFAULT_URI,
LEGACYVM_NETNS and LEGACYVM_TEST_ACCEL set, then tear the instance down and exit with
CMD's status. SIGINT and SIGTERM are passed on to CMD.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := start(cmd.Context(), *accel)
			if err != nil {
				return err
			}
			code, runErr := runChild(cmd.Context(), e, args)
			stopErr := stopEnv(e)
			if runErr != nil {
				return errors.Join(runErr, stopErr)
			}
			if stopErr != nil {
				if code == 0 {
					code = 1
				}
				logf("testenv: %v", stopErr)
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

func runChild(ctx context.Context, e *testenv.Env, args []string) (int, error) {
	c := exec.Command(args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = append(withoutEnv(os.Environ(), "LIBVIRT_DEFAULT_URI", "LEGACYVM_NETNS", "LEGACYVM_TEST_ACCEL"),
		"LIBVIRT_DEFAULT_URI="+e.URI,
		"LEGACYVM_NETNS="+e.NetNS,
		"LEGACYVM_TEST_ACCEL="+accelName(e.Accel),
	)
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", args[0], err)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err := c.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("run %s: %w", args[0], err)
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func newCmdReap() *cobra.Command {
	return &cobra.Command{
		Use:   "reap",
		Short: "Remove instances whose owner process is dead (namespaces, processes, directories)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reaped, err := testenv.Reap(cmd.Context())
			for _, n := range reaped {
				fmt.Fprintln(cmd.OutOrStdout(), "reaped", n)
			}
			return err
		},
	}
}

func newCmdGuest() *cobra.Command {
	return &cobra.Command{
		Use:   "guest",
		Short: "Build (or find in the cache) the stand-in guest and print its paths",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, err := testenv.BuildGuest(cmd.Context(), testenv.GuestOptions{Logf: logf})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, kv := range [][2]string{
				{"DISK", g.Disk}, {"VMLINUX", g.Vmlinux}, {"INITRD", g.Initrd},
				{"INSTALLER", g.Installer}, {"BUSYBOX", g.Busybox}, {"CMDLINE", g.Cmdline},
			} {
				fmt.Fprintf(out, "%s='%s'\n", kv[0], kv[1])
			}
			return nil
		},
	}
}
