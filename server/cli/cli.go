// Package cli is the crm command: configuration from flags and environment
// variables, then the store (MongoDB, or the embedded engine), then the HTTP
// server, until SIGINT or SIGTERM; and the seed and engine subcommands.
//
//	crm [flags]          serve the API (see crm -help)
//	crm seed [flags]     fill the database with demo data (see crm seed -help)
//	crm engine [flags]   run the bundled MongoDB-compatible engine as a server
//	crm version          print the version and the revision it was built from
package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"
	"golang.org/x/term"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/server"
	"github.com/opencrm/crm/store"
	"github.com/opencrm/crm/store/seed"
)

// Main runs the command with the process's arguments and environment and
// returns its exit status (see exitStatus).
func Main() int {
	return exitStatus(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr)
}

// exitStatus prints err on stderr, as one line, and returns the exit status
// for it: 0 for no error or for help that was asked for (as Go's own commands
// do), 2 for a command line that does not parse (already explained on
// stderr), 128+n for a command stopped by signal n (as shells report it), and
// 1 for any other failure.
func exitStatus(err error, stderr io.Writer) int {
	var usage usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		return 2
	}
	fmt.Fprintf(stderr, "crm: %v\n", err)
	var stopped interrupted
	if errors.As(err, &stopped) {
		return 128 + int(stopped.signal)
	}
	return 1
}

// usageError is a command line that does not parse; the flag package, or
// parseFlags, has already said why on stderr.
type usageError struct{ error }

// config is the server's configuration; see the README's table.
type config struct {
	addr            string
	mongoURI        string
	dbName          string
	dataDir         string
	jwtSecret       string
	logLevel        string
	logFormat       string
	accessTTL       time.Duration
	refreshTTL      time.Duration
	dbTimeout       time.Duration
	shutdownTimeout time.Duration
	corsOrigins     []string
	trustedProxies  []*net.IPNet
}

// The usage texts printed above each command's flags.
const (
	serveUsage = `Usage: crm [flags]          serve the API
       crm seed [flags]     fill the database with demo data (crm seed -help)
       crm engine [flags]   run the bundled MongoDB-compatible engine as a server (crm engine -help)
       crm version          print the version and the revision it was built from
       crm help [command]   print this, or a command's usage

A flag can also be set by the environment variable named after it; the flag wins.

`
	seedUsage = `Usage: crm seed [flags]

Fills the database that crm serves with demo users, customers and interactions.
Each count names the first N demo records of its kind: running it again keeps
the records that exist (and their passwords) and adds the rest, so it creates no
duplicates and only adds what a larger count asks for. Customers belong to the
seeded users and interactions are between seeded users and customers; -users is
20 unless given, so a run with only -customers also tops the users up to 20.

It refuses a database holding users that it did not create, as its first user is
an admin whose password is known: seed a fresh one (another -data-dir, or
-db-name with MongoDB), or pass -force for a demo database.

`
	engineUsage = `Usage: crm engine [flags]

Runs the bundled MongoDB-compatible engine as a server of its own, on SQLite
files or on PostgreSQL, for several crm processes to share through MONGODB_URI.
It has no authentication: it listens on loopback only, unless -allow-remote.

`
)

// withUsage makes fs print usage, then its flags, when asked for -help or
// given a wrong flag.
func withUsage(fs *flag.FlagSet, usage string) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"Flags:\n")
		fs.PrintDefaults()
	}
}

// parseFlags parses args with fs. A flag that is not given takes the value of
// the environment variable that vars names for it (flag name → variable), so
// a flag wins over its variable and a bad variable is an error only when it is
// used: help, or the flag that replaces it, always works. The usage goes to
// stdout when asked for (ErrHelp), to stderr after a wrong flag (usageError).
func parseFlags(fs *flag.FlagSet, args []string, vars map[string]string, getenv func(string) string, stdout, stderr io.Writer) error {
	for name, variable := range vars {
		fs.Lookup(name).Usage += " (" + variable + ")"
	}
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = usage.WriteTo(stdout)
		return err
	case err != nil:
		_, _ = usage.WriteTo(stderr)
		return usageError{err}
	case fs.NArg() > 0:
		err := fmt.Errorf("unexpected argument %q (see %s -help)", fs.Arg(0), fs.Name())
		fmt.Fprintln(stderr, err)
		return usageError{err}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v := getenv(vars[name])
		if given[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			if _, ok := fs.Lookup(name).Value.(flag.Getter).Get().(time.Duration); ok {
				return fmt.Errorf("%s=%q is not a duration such as 15m or 30s", vars[name], v)
			}
			return fmt.Errorf("%s=%q: %w", vars[name], v, err)
		}
	}
	return nil
}

// command describes how a command of crm reads its configuration.
type command struct {
	name, usage string
	// serving: the command serves the API and reads the server's settings
	// besides the database and log ones that every command reads.
	serving bool
	// flags registers the command's own flags.
	flags func(*flag.FlagSet)
}

// parseConfig reads the server's configuration (see command.parse).
func parseConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (config, error) {
	return command{name: "crm", usage: serveUsage, serving: true}.parse(args, getenv, stdout, stderr)
}

// parse reads flags, which win over environment variables, which win over the
// defaults.
func (cmd command) parse(args []string, getenv func(string) string, stdout, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	withUsage(fs, cmd.usage)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	fs.StringVar(&cfg.mongoURI, "mongodb-uri", "", "MongoDB URI; empty runs the embedded database")
	fs.StringVar(&cfg.dbName, "db-name", "crm", "database name")
	fs.StringVar(&cfg.dataDir, "data-dir", "data", "embedded database directory")
	fs.DurationVar(&cfg.dbTimeout, "db-timeout", 5*time.Second, "limit for each database operation")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "json or text")
	vars := map[string]string{"mongodb-uri": "MONGODB_URI", "db-name": "CRM_DB_NAME", "data-dir": "CRM_DATA_DIR",
		"db-timeout": "CRM_DB_TIMEOUT", "log-level": "CRM_LOG_LEVEL", "log-format": "CRM_LOG_FORMAT"}
	var cors, proxies string
	if cmd.serving {
		fs.StringVar(&cfg.addr, "addr", ":8080", "listen address")
		fs.StringVar(&cfg.jwtSecret, "jwt-secret", "", "HS256 key, at least 32 bytes; prefer the variable")
		fs.DurationVar(&cfg.accessTTL, "access-token-ttl", 15*time.Minute, "access token lifetime")
		fs.DurationVar(&cfg.refreshTTL, "refresh-token-ttl", 30*24*time.Hour, "refresh token lifetime")
		fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long in-flight requests get on shutdown")
		fs.StringVar(&cors, "cors-origins", "", "comma-separated browser origins allowed to call the API; empty disables CORS")
		fs.StringVar(&proxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed")
		maps.Copy(vars, map[string]string{"addr": "CRM_ADDR", "jwt-secret": "CRM_JWT_SECRET",
			"access-token-ttl": "CRM_ACCESS_TOKEN_TTL", "refresh-token-ttl": "CRM_REFRESH_TOKEN_TTL",
			"shutdown-timeout": "CRM_SHUTDOWN_TIMEOUT", "cors-origins": "CRM_CORS_ORIGINS", "trusted-proxies": "CRM_TRUSTED_PROXIES"})
	}
	if err := parseFlags(fs, args, vars, getenv, stdout, stderr); err != nil {
		return cfg, err
	}
	durations := []namedDuration{{"database timeout", cfg.dbTimeout}}
	if cmd.serving {
		var err error
		if cfg.corsOrigins, err = parseOrigins(cors); err != nil {
			return cfg, err
		}
		if cfg.trustedProxies, err = parseCIDRs(proxies); err != nil {
			return cfg, err
		}
		if _, _, err := net.SplitHostPort(cfg.addr); err != nil {
			return cfg, fmt.Errorf("listen address %q: %w", cfg.addr, err)
		}
		durations = append(durations, namedDuration{"access token lifetime", cfg.accessTTL},
			namedDuration{"refresh token lifetime", cfg.refreshTTL}, namedDuration{"shutdown timeout", cfg.shutdownTimeout})
	}
	for _, d := range durations {
		if d.value <= 0 {
			return cfg, fmt.Errorf("the %s must be positive, got %s", d.name, d.value)
		}
	}
	return cfg, nil
}

type namedDuration struct {
	name  string
	value time.Duration
}

// parseOrigins reads a comma-separated list of origins such as
// "https://crm.example.com,http://localhost:3000", or "*".
func parseOrigins(list string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
				u.RawQuery != "" || u.User != nil || u.Fragment != "" {
				return nil, fmt.Errorf("CORS origin %q: write it as scheme://host[:port], e.g. https://crm.example.com", o)
			}
			// As browsers send it (RFC 6454 section 6.1): the host in lower
			// case, the scheme's default port left out. Written otherwise, it
			// would be accepted here and never match.
			host := strings.ToLower(u.Host)
			if u.Port() == map[string]string{"http": "80", "https": "443"}[u.Scheme] {
				host = strings.TrimSuffix(host, ":"+u.Port())
			}
			o = u.Scheme + "://" + host
		}
		origins = append(origins, o)
	}
	return origins, nil
}

// parseCIDRs reads a comma-separated list of networks ("10.0.0.0/8") or
// addresses ("10.0.0.7").
func parseCIDRs(list string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if ip := net.ParseIP(c); ip != nil {
			bits := 8 * len(ip.To16())
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: write a network such as 10.0.0.0/8 or an address", c)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", cfg.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: use json or text", cfg.logFormat)
	}
}

// run dispatches to a subcommand; without one, it serves the API.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "seed":
			return seedCommand(ctx, args[1:], getenv, stdout, stderr)
		case "engine":
			return engineCommand(ctx, args[1:], getenv, stdout, stderr)
		case "help": // crm help [command]: crm [command] -help
			return run(ctx, append(slices.Clone(args[1:]), "-help"), getenv, stdout, stderr)
		case "version", "-version", "--version":
			if len(args) > 1 {
				err := fmt.Errorf("unexpected argument %q (see crm -help)", args[1])
				fmt.Fprintln(stderr, err)
				return usageError{err}
			}
			info, ok := debug.ReadBuildInfo()
			fmt.Fprintln(stdout, version(info, ok))
			return nil
		}
	}
	return serve(ctx, args, getenv, stdout, stderr)
}

// version describes the build: the module's version and the revision it was
// built from, as the go command recorded them (a build outside a module, or
// from a checkout without version control, records less).
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "crm, version unknown (built without module information)"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "development build"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	rev := "revision unknown"
	if r := settings["vcs.revision"]; r != "" {
		rev = "revision " + r
		if t := settings["vcs.time"]; t != "" {
			rev += " of " + t
		}
		if settings["vcs.modified"] == "true" {
			rev += ", with uncommitted changes"
		}
	}
	return fmt.Sprintf("crm %s, %s, %s", v, rev, info.GoVersion)
}

// serve runs the API until ctx ends or a signal arrives.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	// Claim the port before anything else, so that a port in use fails at
	// once, with one line, and without touching the data directory.
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", cfg.addr, err)
	}
	defer ln.Close()

	secret, err := jwtSecret(cfg, log)
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokens(auth.TokenConfig{
		Secret: secret, Issuer: "crm", Audience: "crm-api", TTL: cfg.accessTTL, Leeway: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	passwords, err := auth.NewPasswords(auth.OWASPArgon2)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	metrics := server.NewMetrics()
	st, err := store.Open(ctx, store.Config{
		URI: cfg.mongoURI, Database: cfg.dbName, DataDir: cfg.dataDir, Timeout: cfg.dbTimeout, Logger: log,
		Monitor: metrics.CommandMonitor(),
	})
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), cfg.dbTimeout)
		defer cancel()
		if err := st.Close(closeCtx); err != nil {
			log.Warn("closing the database", "error", err)
		}
	}()

	handler, err := server.New(server.Config{
		Handler: api.New(api.Config{
			Store: st, Tokens: tokens, Passwords: passwords, Secret: secret, RefreshTTL: cfg.refreshTTL, Logger: log,
		}),
		Store:          st,
		Logger:         log,
		Metrics:        metrics,
		CORSOrigins:    cfg.corsOrigins,
		TrustedProxies: cfg.trustedProxies,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	base := "http://" + displayAddr(ln.Addr())
	database := "embedded, data in " + cfg.dataDir
	if abs, err := filepath.Abs(cfg.dataDir); err == nil {
		database = "embedded, data in " + abs
	}
	if cfg.mongoURI != "" {
		database = "MongoDB, database " + cfg.dbName
	}
	log.Info("CRM API listening", "url", base, "listen", ln.Addr().String(), "docs", base+"/docs", "spec", base+"/openapi.yaml",
		"database", database, "passwords", passwords.Params().String())
	if exists, err := st.AnyUser(ctx); err == nil && !exists {
		// Until then, anyone who reaches the port can make themselves admin.
		log.Warn("no user yet: the first POST /users, which needs no token, creates the first admin; create yours now")
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.shutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// The grace period is over: the connections still open are closed,
		// which ends their requests (their contexts are cancelled, and with
		// them any database work), so that the database closes and the
		// process exits now, as CRM_SHUTDOWN_TIMEOUT promises.
		log.Warn("the grace period ended with requests in flight; closing their connections", "grace", cfg.shutdownTimeout.String())
		_ = srv.Close()
	}
	log.Info("stopped")
	return nil
}

// writeNewFile writes data to path, which must not exist, in one step: it is
// written to a temporary file first and then linked into place, so a reader
// never sees it half-written and of two writers exactly one wins (fs.ErrExist).
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// displayAddr is the address to show for a listener: "localhost:8080" rather
// than "[::]:8080".
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// secretFile is where the embedded mode keeps the JWT secret it generated.
const secretFile = "jwt-secret"

// jwtSecret returns the key that signs access tokens: CRM_JWT_SECRET, or, with
// the embedded database and no secret configured, one generated once and kept
// in the data directory (mode 0600) so that tokens survive restarts.
func jwtSecret(cfg config, log *slog.Logger) ([]byte, error) {
	if cfg.jwtSecret != "" {
		if len(cfg.jwtSecret) < auth.MinSecretLen {
			return nil, fmt.Errorf("CRM_JWT_SECRET must be at least %d bytes, got %d (try: openssl rand -base64 48)", auth.MinSecretLen, len(cfg.jwtSecret))
		}
		return []byte(cfg.jwtSecret), nil
	}
	if cfg.mongoURI != "" {
		return nil, fmt.Errorf("CRM_JWT_SECRET is required with MONGODB_URI: set it to at least %d random bytes (try: openssl rand -base64 48), the same on every server", auth.MinSecretLen)
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", cfg.dataDir, err)
	}
	path := filepath.Join(cfg.dataDir, secretFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := checkSecretFile(path); err != nil {
			return nil, err
		}
		secret := strings.TrimSpace(string(data))
		if len(secret) < auth.MinSecretLen {
			return nil, fmt.Errorf("%s holds a secret shorter than %d bytes; delete it to generate a new one", path, auth.MinSecretLen)
		}
		return []byte(secret), nil
	case errors.Is(err, fs.ErrNotExist):
		b := make([]byte, 48)
		_, _ = rand.Read(b)
		secret := base64.RawURLEncoding.EncodeToString(b)
		if err := writeNewFile(path, []byte(secret+"\n"), 0o600); errors.Is(err, fs.ErrExist) {
			return jwtSecret(cfg, log) // another process was first: use its secret
		} else if err != nil {
			return nil, fmt.Errorf("cannot write the JWT secret to %s: %w", path, err)
		}
		log.Info("generated a JWT secret; set CRM_JWT_SECRET to use your own", "file", path)
		return []byte(secret), nil
	default:
		return nil, fmt.Errorf("cannot read the JWT secret from %s: %w", path, err)
	}
}

// checkSecretFile refuses a secret that others could have written or read,
// as ssh does a private key: whoever knows it signs tokens for any user. (A
// data directory that was open to everyone lets anyone put one there.)
func checkSecretFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	stat, ok := info.Sys().(*syscall.Stat_t)
	switch {
	case ok && int(stat.Uid) != os.Getuid():
		return fmt.Errorf("%s belongs to another user (uid %d), who could have chosen the key that signs tokens: delete it to generate a new one", path, stat.Uid)
	case info.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%s is open to other users (%s): delete it to generate a new one, or chmod 600 it if no one else could have read or written it", path, info.Mode().Perm())
	}
	return nil
}

// defaultSeedPassword is the seeded users' password unless -password says
// otherwise: public (the README names it), so it may be printed.
const defaultSeedPassword = "demo password"

// seedCommand fills the configured database with demo data.
func seedCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var sc seed.Config
	var password string
	cfg, err := command{name: "crm seed", usage: seedUsage, flags: func(fs *flag.FlagSet) {
		fs.IntVar(&sc.Users, "users", 20, "seed the first N demo users (customers and interactions belong to them)")
		fs.IntVar(&sc.Customers, "customers", 1000, "seed the first N demo customers, owned by seeded users")
		fs.IntVar(&sc.Interactions, "interactions", 5000, "seed the first N demo interactions, between seeded users and customers")
		fs.StringVar(&password, "password", defaultSeedPassword, "password of the users this run adds (those that exist keep theirs)")
		fs.BoolVar(&sc.Force, "force", false, "seed even a database holding users that crm seed did not create: for a demo database only")
	}}.parse(args, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	if err := sc.Check(); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(ctx)
	defer stop()
	passwords, err := auth.NewPasswords(auth.OWASPArgon2)
	if err != nil {
		return err
	}
	if sc.PasswordHash, err = passwords.Hash(ctx, password); err != nil {
		return stopped(ctx, err, 0)
	}
	st, err := store.Open(ctx, store.Config{URI: cfg.mongoURI, Database: cfg.dbName, DataDir: cfg.dataDir, Timeout: cfg.dbTimeout, Logger: log})
	if err != nil {
		return stopped(ctx, err, 0)
	}
	defer st.Close(context.WithoutCancel(ctx))

	// On a terminal, a bar and sentences for a person; elsewhere, log records
	// in the configured format (JSON lines by default) for a program.
	say := func(msg string, args ...any) { log.Info(msg, args...) }
	if isTerminal(stderr) {
		sc.Bar = stderr
		say = func(msg string, _ ...any) { fmt.Fprintln(stderr, msg) }
	} else {
		sc.Log = log
	}
	start := time.Now()
	res, err := seed.Run(ctx, st, sc)
	switch {
	case errors.Is(err, seed.ErrForeignUsers):
		return errors.New("seed: this database holds users that crm seed did not create, and a seed adds admins whose password is known: " +
			"seed a fresh database (another -data-dir, or -db-name with MongoDB), or pass -force if this one is a demo")
	case err != nil:
		return stopped(ctx, fmt.Errorf("seed: %w", err), res.Users+res.Customers+res.Interactions)
	}
	reportSeed(say, sc, res, time.Since(start), password)
	return nil
}

// reportSeed says what a seed added and what existed, which password the new
// users have, and whom to sign in as: say prints a sentence, or logs it with
// the numbers as attributes.
func reportSeed(say func(msg string, args ...any), sc seed.Config, res seed.Result, took time.Duration, password string) {
	existed := seed.Result{Users: sc.Users - res.Users, Customers: sc.Customers - res.Customers, Interactions: sc.Interactions - res.Interactions}
	msg := fmt.Sprintf("seeded in %s: %s, %s, %s", took.Round(time.Millisecond),
		count(res.Users, "new user"), count(res.Customers, "new customer"), count(res.Interactions, "new interaction"))
	if existed != (seed.Result{}) {
		msg += fmt.Sprintf(" (%s, %s and %s existed already)",
			count(existed.Users, "user"), count(existed.Customers, "customer"), count(existed.Interactions, "interaction"))
	}
	say(msg, "seconds", took.Seconds(), "new_users", res.Users, "new_customers", res.Customers, "new_interactions", res.Interactions,
		"existing_users", existed.Users, "existing_customers", existed.Customers, "existing_interactions", existed.Interactions)
	if sc.Users == 0 {
		return
	}
	// A password that the operator chose stays off the screen and out of logs.
	shown := "the one given with -password"
	if password == defaultSeedPassword {
		shown = strconv.Quote(password)
	}
	switch {
	case res.Users == 0:
		say("no new users: those that existed keep their passwords")
	case existed.Users == 0:
		say(fmt.Sprintf("the password of the %s is %s", count(res.Users, "new user"), shown))
	default:
		say(fmt.Sprintf("the password of the %s is %s; the %s that existed keep theirs", count(res.Users, "new user"), shown, count(existed.Users, "user")))
	}
	say(fmt.Sprintf("sign in as %s, an admin", seed.AdminEmail()), "email", seed.AdminEmail())
}

// count is "1 user" or "2 users".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// checkPassword applies the API's own rule for passwords, the Password schema
// of openapi.yaml, so that every seeded user can sign in through the API.
func checkPassword(password string) error {
	spec, err := gen.GetSpec()
	if err != nil {
		return err
	}
	schema := spec.Components.Schemas["Password"]
	if schema == nil || schema.Value == nil {
		return errors.New("openapi.yaml defines no Password schema")
	}
	if !utf8.ValidString(password) {
		return errors.New("-password is not one the API accepts: it is not UTF-8 text, which a JSON sign-in cannot send")
	}
	if err := schema.Value.VisitJSONString(password); err != nil {
		reason := err.Error()
		if se := (*openapi3.SchemaError)(nil); errors.As(err, &se) {
			reason = se.Reason
		}
		return fmt.Errorf("-password is not one the API accepts (%s): %s", strings.TrimSuffix(schema.Value.Description, "."), reason)
	}
	return nil
}

// signalContext is signal.NotifyContext for SIGINT and SIGTERM, with the
// signal as the context's cause (a signalCause), which stopped turns into
// the exit status that shells expect.
func signalContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-signals:
			cancel(signalCause{s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(signals); cancel(context.Canceled) }
}

type signalCause struct{ syscall.Signal }

func (s signalCause) Error() string { return s.String() + " signal received" }

// interrupted is a seed that a signal stopped: not a failure to report
// (whatever the store said about the cancelled operation), but how to go on.
type interrupted struct {
	signal  syscall.Signal
	records int
}

func (i interrupted) Error() string {
	// "At least": the batch being written when the signal came may have
	// reached the database after the driver stopped waiting for it.
	return fmt.Sprintf("seed interrupted after at least %s; run the same command again to continue", count(i.records, "new record"))
}

// stopped is err, or interrupted if a signal ended ctx: records were written.
func stopped(ctx context.Context, err error, records int) error {
	var sig signalCause
	if errors.As(context.Cause(ctx), &sig) {
		return interrupted{sig.Signal, records}
	}
	return err
}

// isTerminal reports whether w is a terminal, where progress is drawn as a bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// engineCommand runs the bundled engine as a standalone MongoDB-compatible
// server, for several API processes to share.
func engineCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("crm engine", flag.ContinueOnError)
	withUsage(fs, engineUsage)
	listen := fs.String("listen", "127.0.0.1:27017", "TCP address to serve the MongoDB wire protocol on")
	allowRemote := fs.Bool("allow-remote", false, "allow a -listen address beyond loopback, although the engine has no authentication")
	dataDir := fs.String("data-dir", "engine-data", "directory for the SQLite files")
	pgURL := fs.String("postgresql-url", "", "store the data in PostgreSQL instead, e.g. postgres://user:pass@127.0.0.1:5432/crm; prefer the variable, which ps does not show")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or text")
	vars := map[string]string{"listen": "CRM_ENGINE_LISTEN", "data-dir": "CRM_ENGINE_DATA_DIR", "postgresql-url": "CRM_ENGINE_POSTGRESQL_URL",
		"log-level": "CRM_LOG_LEVEL", "log-format": "CRM_LOG_FORMAT"}
	if err := parseFlags(fs, args, vars, getenv, stdout, stderr); err != nil {
		return err
	}
	remote, err := beyondLoopback(*listen)
	if err != nil {
		return err
	}
	if remote && !*allowRemote {
		return fmt.Errorf("listen address %q reaches beyond this machine, and the engine has no authentication: "+
			"anyone who can connect could read and change every record; listen on loopback (127.0.0.1:27017, the default) "+
			"and reach it through a tunnel, or pass -allow-remote if only trusted hosts can reach that address", *listen)
	}
	log, err := newLogger(config{logLevel: *logLevel, logFormat: *logFormat}, stderr)
	if err != nil {
		return err
	}
	if remote {
		log.Warn("the engine listens beyond loopback and has no authentication: whoever can connect can read and change every record", "listen", *listen)
	}
	storage := "SQLite in " + *dataDir
	if *pgURL != "" {
		storage = "PostgreSQL"
		if err := pingPostgreSQL(ctx, *pgURL); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The engine runs until the signal, which is logged first, as the server does.
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	go func() {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			stopEngine()
		case <-engineCtx.Done():
		}
	}()
	err = store.RunEngine(engineCtx, store.EngineConfig{Listen: *listen, DataDir: *dataDir, PostgreSQLURL: *pgURL, Logger: log}, func(uri string) {
		log.Info("engine listening; point the API at it with MONGODB_URI", "MONGODB_URI", uri, "storage", storage)
	})
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// beyondLoopback reports whether a listen address can be reached from other
// machines: any address but a loopback one, or localhost; an empty host is
// every interface.
func beyondLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return false, nil
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback(), nil
}

// withoutPasswords masks in msg every password that the URL raw carries, as
// written and decoded.
func withoutPasswords(msg, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.ReplaceAll(msg, raw, "(the URL)")
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw, url.PathEscape(pw), url.QueryEscape(pw))
	}
	for _, pw := range u.Query()["password"] {
		secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
	}
	for _, secret := range secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "xxxxx")
		}
	}
	return msg
}

// pgTimeout bounds the check that PostgreSQL answers at start.
const pgTimeout = 10 * time.Second

// pingPostgreSQL checks that PostgreSQL answers at url, so that a wrong URL
// stops the engine at start with one line instead of failing every request
// later. The error names the host and database, never the password.
func pingPostgreSQL(ctx context.Context, pgURL string) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	pc, err := pgx.ParseConfig(pgURL)
	if err != nil {
		// pgx leaves out a password written as user:password@, not one in
		// the query string (?password=…).
		return fmt.Errorf("-postgresql-url: %s", withoutPasswords(err.Error(), pgURL))
	}
	where := fmt.Sprintf("PostgreSQL at %s (database %q, user %q)", net.JoinHostPort(pc.Host, strconv.Itoa(int(pc.Port))), pc.Database, pc.User)
	fail := func(err error) error {
		msg := withoutPasswords(err.Error(), pgURL)
		if pc.Password != "" {
			msg = strings.ReplaceAll(msg, pc.Password, "xxxxx")
		}
		return fmt.Errorf("%s does not answer: %s", where, strings.Join(strings.Fields(msg), " "))
	}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return fail(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.Ping(ctx); err != nil {
		return fail(err)
	}
	return nil
}
