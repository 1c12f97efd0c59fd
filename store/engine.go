package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the driver FerretDB's SQLite backend uses, for indexIDLookups
)

// engine is the embedded MongoDB-compatible database: FerretDB with its SQLite
// backend, running inside this process and listening on a Unix socket in the data
// directory, so that nothing else on the machine can reach it over the network.
type engine struct {
	uri    string
	dir    string // SQLite files; empty for PostgreSQL
	cancel context.CancelFunc
	done   chan struct{}
	lock   *os.File // holds an exclusive flock on the data directory
	// socketDir is the temporary directory of the socket, when the data
	// directory's path is too long to hold it; removed on stop.
	socketDir string
}

// makePrivate keeps the machine's other users out of the data directory: it
// holds the password and token hashes, and the engine's socket, which asks
// for no credentials. A directory made with the usual umask (0755) is
// narrowed to 0700, the mode PostgreSQL insists on for its own.
func makePrivate(dir string, log *slog.Logger) {
	info, err := os.Stat(dir)
	if err != nil {
		return // lockDir, next, says what is wrong with it
	}
	if info.Mode().Perm()&0o077 == 0 {
		return
	}
	private := info.Mode()&(os.ModePerm|os.ModeSetgid|os.ModeSticky)&^0o077 | 0o700
	if err := os.Chmod(dir, private); err != nil {
		// Not ours to change (a volume mounted for a container, say): the
		// operator may know why it is shared, and must hear that it is.
		log.Warn("the data directory is open to other users and could not be made private; it holds password hashes",
			"dir", dir, "mode", info.Mode().Perm().String(), "error", err.Error())
		return
	}
	log.Warn("the data directory was open to other users; made it private, as it holds password hashes",
		"dir", dir, "was", info.Mode().Perm().String(), "now", private.Perm().String())
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
	makePrivate(dir, log)
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}

	socket, socketDir := filepath.Join(dir, "mongodb.sock"), ""
	if len(socket) > maxSocketPath {
		// A deep data directory would make the socket path too long to bind;
		// put the socket in a fresh private directory of the temporary
		// directory instead, where nobody else can reach it either.
		if socketDir, err = os.MkdirTemp("", "crm-"); err != nil {
			lock.Close()
			return nil, fmt.Errorf("create a directory for the database's socket: %w", err)
		}
		socket = filepath.Join(socketDir, "mongodb.sock")
	}
	fail := func(err error) (*engine, error) {
		lock.Close()
		if socketDir != "" {
			_ = os.RemoveAll(socketDir)
		}
		return nil, err
	}
	// A socket left behind by a process that was killed would make the listener
	// fail; the flock above proves that no live process owns it.
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("remove stale socket %s: %w", socket, err))
	}

	e, err := runFerret(ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: socket},
		Handler:   "sqlite",
		SQLiteURL: sqliteURL(dir),
	}, log)
	if err != nil {
		return fail(fmt.Errorf("start embedded database in %s: %w", dir, err))
	}
	e.lock, e.dir, e.socketDir = lock, dir, socketDir
	e.uri = unixSocketURI(socket)
	return e, nil
}

// unixSocketURI is the MongoDB URI of a Unix socket. FerretDB's own leaves
// a comma in the path as it is, and the driver reads a comma as the end of a
// host: a data directory named "a,b" could not be reached.
func unixSocketURI(socket string) string {
	return "mongodb://" + url.QueryEscape(socket) + "/" // the driver query-unescapes hosts
}

// sqliteURL is the engine's SQLite URI for a directory.
func sqliteURL(dir string) string {
	return (&url.URL{Scheme: "file", Path: dir + "/"}).String()
}

// ferretNew serialises ferretdb.New, which sets a package-level variable of
// FerretDB's: two stores opening at once (tests do) would race on it.
var ferretNew sync.Mutex

// runFerret starts FerretDB with cfg in the background.
func runFerret(cfg ferretdb.Config, log *slog.Logger) (*engine, error) {
	// The engine logs each connection at info level and dumps every refused
	// command (a duplicate email, say) as a warning; the API reports those
	// itself, so only the engine's errors are passed on.
	cfg.Logger = slog.New(levelFloor{log.Handler().WithAttrs([]slog.Attr{slog.String("component", "engine")}), slog.LevelError})
	ferretNew.Lock()
	f, err := ferretdb.New(&cfg)
	ferretNew.Unlock()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &engine{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	// Only once Run has started does a TCP listener know its address.
	e.uri = f.MongoDBURI()
	return e, nil
}

// EngineConfig configures RunEngine.
type EngineConfig struct {
	// Listen is the TCP address to serve the MongoDB wire protocol on.
	Listen string
	// DataDir holds the SQLite files; unused with PostgreSQLURL.
	DataDir string
	// PostgreSQLURL, if set, stores the data in PostgreSQL instead of SQLite
	// (e.g. postgres://user:password@127.0.0.1:5432/crm).
	PostgreSQLURL string
	Logger        *slog.Logger

	lookupIndexInterval time.Duration // tests shorten it
}

// RunEngine runs the bundled MongoDB-compatible engine as a standalone server
// until ctx ends, so that several API processes can share one database. It
// calls ready with the MongoDB URI to give them once it listens.
func RunEngine(ctx context.Context, cfg EngineConfig, ready func(uri string)) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fc := ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: cfg.Listen}}
	if cfg.PostgreSQLURL != "" {
		fc.Handler, fc.PostgreSQLURL = "postgresql", cfg.PostgreSQLURL
	} else {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return err
		}
		cfg.DataDir = dir
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create data directory %s: %w", dir, err)
		}
		lock, err := lockDir(dir)
		if err != nil {
			return err
		}
		defer lock.Close()
		fc.Handler, fc.SQLiteURL = "sqlite", sqliteURL(dir)
	}
	e, err := runFerret(fc, cfg.Logger)
	if err != nil {
		return fmt.Errorf("start the engine: %w", err)
	}
	defer e.stop()
	if ready != nil {
		ready(e.uri)
	}
	// The indexing ends before the engine and the directory lock do, also
	// when the engine stops on its own.
	indexCtx, stopIndexing := context.WithCancel(ctx)
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		keepLookupIndexes(indexCtx, cfg)
	}()
	defer func() { stopIndexing(); <-indexed }()
	select {
	case <-ctx.Done():
		return nil
	case <-e.done:
		return errors.New("the engine stopped")
	}
}

// lookupIndexInterval is how often the standalone engine looks for new
// collections to give lookup indexes: the API creates them when it first
// starts against the engine.
const lookupIndexInterval = 15 * time.Second

// keepLookupIndexes adds, until ctx ends, the indexes that make the engine's
// lookups use an index (indexIDLookups, indexPostgreSQLLookups) to the
// collections that the API servers create.
func keepLookupIndexes(ctx context.Context, cfg EngineConfig) {
	interval := cfg.lookupIndexInterval
	if interval == 0 {
		interval = lookupIndexInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var err error
		if cfg.PostgreSQLURL != "" {
			err = indexPostgreSQLLookups(ctx, cfg.PostgreSQLURL)
		} else {
			err = indexIDLookups(ctx, cfg.DataDir)
		}
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("cannot add the engine's lookup indexes; lookups read whole tables until this succeeds", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// indexIDLookups makes lookups by _id use an index on the embedded engine.
//
// Why: FerretDB 1.24's SQLite backend indexes _id as _ferretdb_sjson->"_id" but
// looks documents up (find, update and delete by _id) with the expression
// _ferretdb_sjson->'$._id', which SQLite does not recognise as the indexed one:
// every lookup by id scanned the whole table (measured: 0.1 s at 10,000
// customers). An index on the expression the lookups use makes them take
// microseconds. FerretDB does not know this index; it is dropped with its table.
func indexIDLookups(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.sqlite"))
	if err != nil {
		return err
	}
	for _, file := range files {
		if err := indexIDLookupsIn(ctx, file); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(file), err)
		}
	}
	return nil
}

func indexIDLookupsIn(ctx context.Context, file string) error {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: file, RawQuery: "_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		// Table names are FerretDB's own (name_hash), quoted all the same.
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_id_lookup", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// stop shuts the engine down and waits (boundedly) for it to close its files.
func (e *engine) stop() {
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(10 * time.Second):
	}
	if e.lock != nil {
		e.lock.Close()
	}
	if e.socketDir != "" {
		_ = os.RemoveAll(e.socketDir)
	}
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
