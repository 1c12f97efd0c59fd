package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// engine is the embedded MongoDB-compatible database: FerretDB with its SQLite
// backend, running inside this process and listening on a Unix socket in the data
// directory, so that nothing else on the machine can reach it over the network.
type engine struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
	lock   *os.File // holds an exclusive flock on the data directory
}

// maxSocketPath keeps the socket path below the kernel's limit for sun_path
// (108 bytes on Linux, 104 on the BSDs).
const maxSocketPath = 100

// startEngine starts the embedded engine on dataDir, creating the directory if
// needed. Only one process may use a data directory at a time.
func startEngine(dataDir string, log *slog.Logger) (*engine, error) {
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}

	socket := filepath.Join(dir, "mongodb.sock")
	if len(socket) > maxSocketPath {
		// A deep data directory would make the socket path too long to bind; put
		// the socket in the temporary directory under a name derived from the
		// data directory instead.
		sum := sha256.Sum256([]byte(dir))
		socket = filepath.Join(os.TempDir(), "crm-"+hex.EncodeToString(sum[:8])+".sock")
	}
	// A socket left behind by a process that was killed would make the listener
	// fail; the flock above proves that no live process owns it.
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, fmt.Errorf("remove stale socket %s: %w", socket, err)
	}

	sqliteURL := (&url.URL{Scheme: "file", Path: dir + "/"}).String()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: socket},
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
		// The engine logs each connection at info level and dumps every refused
		// command (a duplicate email, say) as a warning; the API reports those
		// itself, so only the engine's errors are passed on.
		Logger: slog.New(levelFloor{log.Handler().WithAttrs([]slog.Attr{slog.String("component", "embedded-db")}), slog.LevelError}),
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("start embedded database in %s: %w", dir, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	e := &engine{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{}), lock: lock}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	return e, nil
}

// stop shuts the engine down and waits (boundedly) for it to close its files.
func (e *engine) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
	}
	e.lock.Close()
}

// lockDir takes an exclusive, non-blocking flock on dir/LOCK. The kernel drops it
// when the process dies, so a crash never leaves the directory locked.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another process", dir)
	}
	return f, nil
}

// levelFloor drops records below a minimum level before they reach the wrapped
// handler.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
