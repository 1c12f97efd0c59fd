package cli

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/opencrm/crm/store"
	"github.com/opencrm/crm/store/seed"
)

// BenchmarkStartup measures a start on the embedded engine holding 10,000
// customers (and 20,000 interactions): from exec of the command to /readyz
// answering 200 (ns/op).
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: dir, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := seed.Run(ctx, st, seed.Config{Users: 20, Customers: 10_000, Interactions: 20_000, PasswordHash: "x"}); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "CRM_TEST_EXEC=1", "CRM_LOG_LEVEL=warn")

	for b.Loop() {
		addr := freeAddr(b)
		cmd := exec.Command(os.Args[0], "-addr", addr, "-data-dir", dir)
		cmd.Env = env
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			res, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				b.Fatal("not ready after 30 s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		b.StartTimer()
	}
}
