// Tests of opening and closing the store (defaults, persistence across
// restarts, the data-directory lock, unwritable, unreachable and invalid
// databases, the command monitor), of the indexes created at start-up
// (including the embedded engine's _id lookups), of the standalone engine
// (RunEngine) and of stores sharing one engine, of the conditions that writes
// carry on MongoDB, and of the translation of driver errors into the store's
// sentinel errors. The helpers that the other test files share
// (openTestStore and friends) live here.
package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"
)

// quietLogger keeps the embedded engine's messages out of the test output.
var quietLogger = slog.New(slog.DiscardHandler)

// testTimeout bounds each database operation in tests: generous, because the
// race detector and parallel tests slow the engine down.
const testTimeout = 15 * time.Second

// openTestStore opens a store on a fresh embedded engine in a temporary data
// directory and closes it when the test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	return openMonitored(t, nil)
}

// commandHook runs before a command of the store's client is sent: name is the
// command (insert, findAndModify, …) and coll the collection it addresses.
type commandHook func(name, coll string)

// openHookedStore is openTestStore with a hook on every command, set (and
// cleared) through the returned pointer. Tests use it to run a conflicting
// write exactly between two steps of a store method.
func openHookedStore(t *testing.T) (*Store, *atomic.Pointer[commandHook]) {
	t.Helper()
	return openHooked(t, Config{DataDir: t.TempDir()})
}

// openHooked opens a store with cfg and a command hook; see openHookedStore.
func openHooked(t *testing.T, cfg Config) (*Store, *atomic.Pointer[commandHook]) {
	t.Helper()
	hook := new(atomic.Pointer[commandHook])
	cfg.Monitor = &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if h := hook.Load(); h != nil {
			coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
			(*h)(e.CommandName, coll)
		}
	}}
	cfg.Timeout, cfg.Logger = testTimeout, quietLogger
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		hook.Store(nil)
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, hook
}

// openMonitored opens a store on a fresh embedded engine with monitor (if
// any) on every command, for tests that need more of a command than
// openHooked's hook gets (its body, or its success).
func openMonitored(t *testing.T, monitor *event.CommandMonitor) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{DataDir: t.TempDir(), Timeout: testTimeout, Logger: quietLogger, Monitor: monitor})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// onceBefore returns a hook that runs f once, before the first command name on
// coll. Commands that f itself sends pass straight through.
func onceBefore(name, coll string, f func()) *commandHook {
	var fired atomic.Bool
	h := commandHook(func(n, c string) {
		if n == name && c == coll && fired.CompareAndSwap(false, true) {
			f()
		}
	})
	return &h
}

func ptr[T any](v T) *T { return &v }

// mustCreateUser stores an active user with the given role.
func mustCreateUser(t *testing.T, s *Store, name, email, role string) *User {
	t.Helper()
	u := &User{Name: name, Email: email, PasswordHash: "hash-of-" + name, Status: StatusActive, Role: role}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// mustCreateCustomer stores c, filling a status when it has none.
func mustCreateCustomer(t *testing.T, s *Store, c *Customer) *Customer {
	t.Helper()
	if c.Status == "" {
		c.Status = StatusActive
	}
	if err := s.CreateCustomer(t.Context(), c); err != nil {
		t.Fatalf("CreateCustomer(%s): %v", c.Email, err)
	}
	return c
}

// mustCreateInteraction stores an interaction between user and customer.
func mustCreateInteraction(t *testing.T, s *Store, user, customer bson.ObjectID, typ, status string, scheduled *time.Time) *Interaction {
	t.Helper()
	it := &Interaction{UserID: user, CustomerID: customer, Type: typ, Status: status, ScheduledAt: scheduled, Description: typ + " " + status}
	if err := s.CreateInteraction(t.Context(), it); err != nil {
		t.Fatalf("CreateInteraction: %v", err)
	}
	return it
}

// countDocs counts the documents of coll matching filter, straight through the driver.
func countDocs(t *testing.T, coll *mongo.Collection, filter bson.D) int64 {
	t.Helper()
	if filter == nil {
		filter = bson.D{}
	}
	n, err := coll.CountDocuments(t.Context(), filter)
	if err != nil {
		t.Fatalf("count %s: %v", coll.Name(), err)
	}
	return n
}

// rawSet sets fields of a document straight through the driver (test set-up
// that the store's API cannot express, such as fixed timestamps).
func rawSet(t *testing.T, coll *mongo.Collection, id any, set bson.D) {
	t.Helper()
	res, err := coll.UpdateOne(t.Context(), bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("raw update of %v in %s: matched %v, %v", id, coll.Name(), res, err)
	}
}

// deleteDecidedSoon returns a hook doing to the record id of coll what a
// delete does: mark it as being deleted, then, a moment later, delete it
// (deleted) or take the mark back (the delete was refused). wait returns once
// the second step is done.
func deleteDecidedSoon(t *testing.T, coll *mongo.Collection, id any, deleted bool) (hook func(), wait func()) {
	t.Helper()
	decided := make(chan struct{})
	hook = func() {
		rawSet(t, coll, id, bson.D{{Key: "deleting_at", Value: time.Now()}})
		go func() {
			defer close(decided)
			time.Sleep(50 * time.Millisecond)
			var err error
			if deleted {
				_, err = coll.DeleteOne(context.Background(), bson.D{{Key: "_id", Value: id}})
			} else {
				_, err = coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: id}},
					bson.D{{Key: "$unset", Value: bson.D{{Key: "deleting_at", Value: ""}}}})
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	return hook, func() {
		select {
		case <-decided:
		case <-time.After(testTimeout):
			t.Fatal("the delete never started: the hooked command did not run")
		}
	}
}

// rawInsert inserts a document straight through the driver, as another
// program (the original CRM) would have.
func rawInsert(t *testing.T, coll *mongo.Collection, doc bson.D) {
	t.Helper()
	if _, err := coll.InsertOne(t.Context(), doc); err != nil {
		t.Fatalf("raw insert into %s: %v", coll.Name(), err)
	}
}

// rawDoc reads a document as stored.
func rawDoc(t *testing.T, coll *mongo.Collection, id any) bson.M {
	t.Helper()
	var m bson.M
	if err := coll.FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&m); err != nil {
		t.Fatalf("read %v from %s: %v", id, coll.Name(), err)
	}
	return m
}

// pause makes sure the next write gets a later millisecond time stamp.
func pause() { time.Sleep(3 * time.Millisecond) }

// runConcurrently runs f(i) for i in [0,n) from n goroutines released together
// and returns the errors in order.
func runConcurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return errs
}

// tallyErrors counts nil errors, errors matching want, and others (returned).
func tallyErrors(errs []error, want error) (ok, matched int, other []error) {
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, want):
			matched++
		default:
			other = append(other, err)
		}
	}
	return ok, matched, other
}

func TestOpenEmbeddedPersistsAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()

	s, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if uri := s.EngineURI(); !strings.HasPrefix(uri, "mongodb://") || !strings.Contains(uri, ".sock") {
		t.Errorf("EngineURI() = %q, want the embedded engine's Unix-socket URI", uri)
	}
	if !s.filterByIDOnly {
		t.Error("filterByIDOnly = false on the embedded engine; conditional writes would rely on filters it does not index")
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "LOCK")); err != nil {
		t.Errorf("no LOCK file in the data directory: %v", err)
	}
	u := mustCreateUser(t, s, "Ada", "ada@example.com", RoleAdmin)
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping after Close = %v, want ErrUnavailable", err)
	}

	// The lock is released on Close, and the data is still there.
	s2, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("second Open after Close: %v", err)
	}
	defer s2.Close(context.Background())
	got, err := s2.GetUserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatalf("user written before the restart: %v", err)
	}
	if got.ID != u.ID || got.Name != "Ada" || got.Role != RoleAdmin || got.Revision != 1 {
		t.Errorf("after restart got %+v, want the user %v named Ada, admin, revision 1", got, u.ID)
	}
	// Creating the indexes again is a no-op, not a second copy of each.
	if n := len(indexSet(t, s2.users.Collection)); n != 7 {
		t.Errorf("users has %d indexes after a restart, want 7", n)
	}
}

// A data directory may be named anything a file system allows; a comma, a
// space, a percent sign or a '+' in the socket's path must not change where
// the driver connects.
func TestOpenOddDataDirNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a,b", "with space+plus", "50%"} {
		dir := filepath.Join(t.TempDir(), name)
		s, err := Open(t.Context(), Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
		if err != nil {
			t.Fatalf("Open(%q): %v", dir, err)
		}
		if err := s.Ping(t.Context()); err != nil {
			t.Errorf("Ping in %q: %v", dir, err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
	// The same, whatever the length of the temporary directory (a long one
	// moves the socket out of the data directory): the driver reads back the
	// path it was given.
	for _, socket := range []string{"/x/a,b/50%/s p+q.sock", "/tmp/crm-0123.sock"} {
		cs, err := connstring.ParseAndValidate(unixSocketURI(socket))
		if err != nil || len(cs.Hosts) != 1 || cs.Hosts[0] != socket {
			t.Errorf("unixSocketURI(%q) = %q, read back as %v (%v)", socket, unixSocketURI(socket), cs.Hosts, err)
		}
	}
}

// The data directory holds password and token hashes, and the socket of an
// engine that asks for no credentials: other users of the machine are kept
// out of it, and out of the socket when it has to live elsewhere.
func TestOpenKeepsOtherUsersOut(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var log bytes.Buffer
	s, err := Open(t.Context(), Config{DataDir: dir, Timeout: testTimeout, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data directory made 0755 is %v after Open (%v), want 0700", info.Mode().Perm(), err)
	}
	if !strings.Contains(log.String(), "made it private") {
		t.Errorf("narrowing the data directory's mode was not logged: %s", log.String())
	}

	// A path too long for a socket moves the socket to a private directory
	// of its own, removed when the store closes.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	s2, err := Open(t.Context(), Config{DataDir: long, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	socketDir := s2.engine.socketDir
	if socketDir == "" {
		t.Fatal("the socket stayed in a data directory whose path is too long for it")
	}
	if info, err := os.Stat(socketDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the socket's directory is %v (%v), want 0700", info.Mode().Perm(), err)
	}
	if err := s2.Ping(t.Context()); err != nil {
		t.Errorf("Ping through the moved socket: %v", err)
	}
	if err := s2.Close(context.Background()); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket's directory outlived the store: %v", err)
	}
}

// Two stores opened at the same time, on different data directories, must not
// interfere: a program (or a test suite running in parallel) may open several.
// Not parallel, so that a data race found here (run with -race) is reported
// against this test alone.
func TestOpenConcurrently(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	stores := make([]*Store, len(dirs))
	errs := runConcurrently(len(dirs), func(i int) error {
		var err error
		stores[i], err = Open(context.Background(), Config{DataDir: dirs[i], Timeout: testTimeout, Logger: quietLogger})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open(%s): %v", dirs[i], err)
		}
		defer stores[i].Close(context.Background())
	}
	mustCreateUser(t, stores[0], "Zero", "zero@example.com", RoleMember)
	if _, err := stores[1].GetUserByEmail(t.Context(), "zero@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a user written to one store is visible in the other: %v", err)
	}
}

// Two API processes may share one engine ("crm engine", RunEngine), each
// connecting to it by URI. Each is modelled here by its own Store on the same
// engine: the other "process" writes exactly between this one's check and its
// write. A conditional write must still succeed for one of them only. (The
// engine's owner here only provides the engine: the embedded engine's own
// socket is private to its process.)
func TestConditionalWritesAcrossStoresSharingAnEngine(t *testing.T) {
	t.Parallel()
	owner := openTestStore(t)
	a, _ := openHooked(t, Config{URI: owner.EngineURI()})
	b, hook := openHooked(t, Config{URI: owner.EngineURI()})
	if !b.filterByIDOnly {
		t.Fatal("a store connected to FerretDB by URI does not know it is FerretDB")
	}
	ctx := t.Context()

	t.Run("update at one revision", func(t *testing.T) {
		u := mustCreateUser(t, a, "Shared", "shared@example.com", RoleMember)
		var errA error
		hook.Store(onceBefore("findAndModify", usersCollection, func() {
			_, errA = a.UpdateUser(ctx, u.ID, 1, UserChanges{Name: ptr("from A")})
		}))
		_, errB := b.UpdateUser(ctx, u.ID, 1, UserChanges{Name: ptr("from B")})
		hook.Store(nil)
		// Exactly one of the two writes at revision 1 wins (B claimed the step
		// first here), the other is told the record changed, and the stored
		// name is the winner's.
		winner := "from A"
		switch {
		case errA == nil && errors.Is(errB, ErrStale):
		case errB == nil && errors.Is(errA, ErrStale):
			winner = "from B"
		default:
			t.Fatalf("updates at one revision from two processes: A %v, B %v; want one nil and one ErrStale", errA, errB)
		}
		got, err := a.GetUser(ctx, u.ID)
		if err != nil || got.Name != winner || got.Revision != 2 {
			t.Errorf("stored %+v (%v), want the winner's name %q at revision 2", got, err, winner)
		}
	})

	t.Run("refresh token exchanged once", func(t *testing.T) {
		mustCreateToken(t, a, "shared-token", bson.NewObjectID(), "fam", time.Hour)
		var errA error
		hook.Store(onceBefore("update", refreshTokensCollection, func() {
			_, errA = a.UseRefreshToken(ctx, "shared-token")
		}))
		_, errB := b.UseRefreshToken(ctx, "shared-token")
		hook.Store(nil)
		// One exchange succeeds; the other is a reuse (one token, never two
		// new sessions).
		if !(errA == nil && errors.Is(errB, ErrTokenReused)) && !(errB == nil && errors.Is(errA, ErrTokenReused)) {
			t.Errorf("exchanges of one token from two processes: A %v, B %v; want one nil and one ErrTokenReused", errA, errB)
		}
	})

	t.Run("last admin", func(t *testing.T) {
		adminA := mustCreateUser(t, a, "Admin A", "admin-a@example.com", RoleAdmin)
		adminB := mustCreateUser(t, a, "Admin B", "admin-b@example.com", RoleAdmin)
		var errA error
		hook.Store(onceBefore("findAndModify", usersCollection, func() {
			_, errA = a.UpdateUser(ctx, adminA.ID, 1, UserChanges{Role: ptr(RoleMember)})
		}))
		_, errB := b.UpdateUser(ctx, adminB.ID, 1, UserChanges{Role: ptr(RoleMember)})
		hook.Store(nil)
		if errA != nil {
			t.Fatalf("process A's demotion: %v", errA)
		}
		if !errors.Is(errB, ErrLastAdmin) {
			n := countDocs(t, a.users.Collection, bson.D{{Key: "role", Value: "admin"}})
			t.Errorf("process B's demotion of the other admin = %v, want ErrLastAdmin; %d admins left", errB, n)
		}
	})
}

// On MongoDB the store puts each write's condition in the write's filter
// (filterByIDOnly is false there). This runs those queries on the embedded
// engine, which evaluates them the same way, to check them.
func TestConditionsInFilterAsOnMongoDB(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	s.filterByIDOnly = false
	ctx := t.Context()

	t.Run("revisions", func(t *testing.T) {
		id := bson.NewObjectID()
		rawInsert(t, s.users.Collection, bson.D{{Key: "_id", Value: id}, {Key: "name", Value: "Legacy"}, {Key: "email", Value: "legacy@old.test"}, {Key: "role", Value: "User"}})
		if _, err := s.UpdateUser(ctx, id, 1, UserChanges{Name: ptr("x")}); !errors.Is(err, ErrStale) {
			t.Errorf("update of a legacy user at revision 1 = %v, want ErrStale", err)
		}
		u, err := s.UpdateUser(ctx, id, 0, UserChanges{Name: ptr("Renamed")})
		if err != nil || u.Revision != 1 || u.Name != "Renamed" {
			t.Fatalf("update of a legacy user at revision 0 = %+v, %v", u, err)
		}
		if _, err := s.UpdateUser(ctx, id, 0, UserChanges{Name: ptr("again")}); !errors.Is(err, ErrStale) {
			t.Errorf("second update at revision 0 = %v, want ErrStale", err)
		}
		if _, err := s.UpdateUser(ctx, bson.NewObjectID(), 1, UserChanges{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update of an unknown user = %v, want ErrNotFound", err)
		}
		if err := s.DeleteUser(ctx, id, 2); !errors.Is(err, ErrStale) {
			t.Errorf("delete at a later revision = %v, want ErrStale", err)
		}
		if err := s.DeleteUser(ctx, bson.NewObjectID(), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete of an unknown user = %v, want ErrNotFound", err)
		}
		if err := s.DeleteUser(ctx, id, 1); err != nil {
			t.Errorf("delete at the current revision: %v", err)
		}
	})

	t.Run("refresh token exchanged elsewhere meanwhile", func(t *testing.T) {
		mustCreateToken(t, s, "tok", bson.NewObjectID(), "fam", time.Hour)
		mustCreateToken(t, s, "sibling", bson.NewObjectID(), "fam", time.Hour)
		// Another process exchanges the token between this one's read and write.
		hook.Store(onceBefore("update", refreshTokensCollection, func() {
			rawSet(t, s.refreshTokens.Collection, "tok", bson.D{{Key: "used_at", Value: time.Now()}})
		}))
		_, err := s.UseRefreshToken(ctx, "tok")
		hook.Store(nil)
		if !errors.Is(err, ErrTokenReused) {
			t.Fatalf("UseRefreshToken racing another exchange = %v, want ErrTokenReused", err)
		}
		if _, err := s.UseRefreshToken(ctx, "sibling"); !errors.Is(err, ErrNotFound) {
			t.Errorf("sibling after the detected reuse = %v, want ErrNotFound (family revoked)", err)
		}
	})

	t.Run("expired idempotency key", func(t *testing.T) {
		old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
		rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "k"}, {Key: "request_hash", Value: "old"}, {Key: "state", Value: "done"},
			{Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(time.Hour)}})
		if claim, rec, err := s.ClaimIdempotencyKey(ctx, "k", "new", time.Hour); err != nil || claim == nil || rec != nil {
			t.Fatalf("claim of an expired key = %+v, %+v, %v; want a fresh claim", claim, rec, err)
		}
		if got, err := s.GetIdempotencyRecord(ctx, "k"); err != nil || got.RequestHash != "new" {
			t.Errorf("record after the claim: %+v, %v", got, err)
		}
	})

	t.Run("expired pending idempotency key", func(t *testing.T) {
		old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
		rawInsert(t, s.idempotency.Collection, bson.D{{Key: "_id", Value: "abandoned"}, {Key: "request_hash", Value: "old"}, {Key: "state", Value: "pending"},
			{Key: "created_at", Value: old}, {Key: "expires_at", Value: old.Add(time.Hour)}})
		claim, rec, err := s.ClaimIdempotencyKey(ctx, "abandoned", "new", time.Hour)
		if err != nil || claim == nil || rec != nil {
			t.Fatalf("claim of an expired key = %+v, %+v, %v; want a claim", claim, rec, err)
		}
		// The expired claim reaches nothing any more; the new one does.
		first := IdempotencyClaim{Key: "abandoned", CreatedAt: old}
		if err := s.CompleteIdempotencyKey(ctx, first, time.Hour, 201, nil, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("completing the abandoned claim = %v, want ErrNotFound", err)
		}
		if err := s.ReleaseIdempotencyKey(ctx, first); err != nil {
			t.Errorf("releasing the abandoned claim: %v", err)
		}
		if err := s.CompleteIdempotencyKey(ctx, *claim, time.Hour, 201, nil, nil); err != nil {
			t.Errorf("completing the new claim: %v", err)
		}
		if got, err := s.GetIdempotencyRecord(ctx, "abandoned"); err != nil || !got.Done() || got.RequestHash != "new" {
			t.Errorf("record after the takeover: %+v, %v", got, err)
		}
	})
}

// RunEngine serves the engine on TCP for several API processes, holding the
// data directory for as long as it runs.
func TestRunEngine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	uris := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunEngine(ctx, EngineConfig{Listen: "127.0.0.1:0", DataDir: dir, Logger: quietLogger}, func(uri string) { uris <- uri })
	}()
	var uri string
	select {
	case uri = <-uris:
	case err := <-done:
		t.Fatalf("RunEngine ended before it was ready: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("RunEngine not ready")
	}
	if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
		t.Errorf("RunEngine's URI %q, want a TCP URI on 127.0.0.1", uri)
	}

	s1, err := Open(ctx, Config{URI: uri, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open by URI: %v", err)
	}
	defer s1.Close(context.Background())
	s2, err := Open(ctx, Config{URI: uri, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("second Open by URI: %v", err)
	}
	defer s2.Close(context.Background())
	if s1.EngineURI() != "" || !s1.filterByIDOnly {
		t.Errorf("a store on the shared engine: EngineURI %q, filterByIDOnly %v; want none and true", s1.EngineURI(), s1.filterByIDOnly)
	}
	mustCreateUser(t, s1, "Shared", "shared@example.com", RoleMember)
	if _, err := s2.GetUserByEmail(ctx, "shared@example.com"); err != nil {
		t.Errorf("the other API store does not see the user: %v", err)
	}

	// The data directory is taken.
	if s, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger}); err == nil || !strings.Contains(err.Error(), "in use") {
		if s != nil {
			s.Close(context.Background())
		}
		t.Errorf("embedded Open of the engine's data directory = %v, want an in-use error", err)
	}
	if err := RunEngine(ctx, EngineConfig{Listen: "127.0.0.1:0", DataDir: dir, Logger: quietLogger}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second RunEngine on the same data directory = %v, want an in-use error", err)
	}

	// The API processes go away, then the engine is told to stop.
	s1.Close(context.Background())
	s2.Close(context.Background())
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunEngine after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunEngine did not stop within 5 s of its context ending")
	}
}

func TestOpenDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		cfg          Config
		wantDatabase string
		wantTimeout  time.Duration
	}{
		{"zero values", Config{}, "crm", 5 * time.Second},
		{"explicit", Config{Database: "crm_other", Timeout: 7 * time.Second}, "crm_other", 7 * time.Second},
		{"negative timeout", Config{Timeout: -time.Second}, "crm", 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DataDir = t.TempDir()
			s, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close(context.Background())
			if got := s.db.Name(); got != tc.wantDatabase {
				t.Errorf("database %q, want %q", got, tc.wantDatabase)
			}
			if s.timeout != tc.wantTimeout {
				t.Errorf("timeout %v, want %v", s.timeout, tc.wantTimeout)
			}
		})
	}
}

func TestOpenWithMonitor(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	commands := map[string]int{}
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		mu.Lock()
		commands[e.CommandName]++
		mu.Unlock()
	}}
	s, err := Open(t.Context(), Config{DataDir: t.TempDir(), Timeout: testTimeout, Logger: quietLogger, Monitor: monitor})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close(context.Background())
	if _, err := s.GetUser(t.Context(), bson.NewObjectID()); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if commands["find"] < 1 || commands["createIndexes"] < 1 {
		t.Errorf("the monitor saw %v; want at least the find and the createIndexes", commands)
	}
}

// indexSet describes the indexes of coll as "field:dir,field:dir[ unique]".
func indexSet(t *testing.T, coll *mongo.Collection) []string {
	t.Helper()
	cur, err := coll.Indexes().List(t.Context())
	if err != nil {
		t.Fatalf("list indexes of %s: %v", coll.Name(), err)
	}
	var specs []struct {
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(t.Context(), &specs); err != nil {
		t.Fatalf("read indexes of %s: %v", coll.Name(), err)
	}
	var out []string
	for _, spec := range specs {
		parts := make([]string, len(spec.Key))
		for i, e := range spec.Key {
			parts[i] = fmt.Sprintf("%s:%v", e.Key, e.Value)
		}
		d := strings.Join(parts, ",")
		if spec.Unique {
			d += " unique"
		}
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

func TestOpenCreatesIndexes(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	want := map[*mongo.Collection][]string{
		s.users.Collection: {
			"_id:1",
			"created_at:-1,_id:-1",
			"email:1 unique",
			"name_key:1,_id:1",
			"role:1,created_at:-1,_id:-1",
			"status:1,created_at:-1,_id:-1",
			"updated_at:-1,_id:-1",
		},
		s.customers.Collection: {
			"_id:1",
			"company:1,created_at:-1,_id:-1",
			"created_at:-1,_id:-1",
			"email:1 unique",
			"name_key:1,_id:1",
			"owner_id:1,created_at:-1,_id:-1",
			"status:1,created_at:-1,_id:-1",
			"tags:1,created_at:-1,_id:-1",
			"updated_at:-1,_id:-1",
		},
		s.interactions.Collection: {
			"_id:1",
			"created_at:-1,_id:-1",
			"customer_id:1,created_at:-1,_id:-1",
			"customer_id:1,scheduled_at:-1,_id:-1",
			"scheduled_at:-1,_id:-1",
			"status:1,created_at:-1,_id:-1",
			"type:1,created_at:-1,_id:-1",
			"updated_at:-1,_id:-1",
			"user_id:1,created_at:-1,_id:-1",
		},
		s.refreshTokens.Collection: {
			"_id:1",
			"expires_at:1",
			"family:1",
			"user_id:1",
		},
		s.idempotency.Collection: {
			"_id:1",
			"expires_at:1",
		},
	}
	// The index of the name sort before name_key goes.
	if _, err := s.customers.Indexes().CreateOne(t.Context(), mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.createIndexes(t.Context()); err != nil {
		t.Fatal(err)
	}
	for coll, w := range want {
		got := indexSet(t, coll)
		if strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("indexes of %s:\n got %q\nwant %q", coll.Name(), got, w)
		}
	}
}

// On the embedded engine, lookups by _id must use an index: FerretDB's own
// index on _id is on an expression its lookups do not use, so the store adds
// one on the expression they do use (indexIDLookups). Checked in the SQLite
// file itself, with the query plan of such a lookup.
func TestOpenIndexesIDLookups(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(t.Context(), Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	mustCreateUser(t, s, "A", "a@example.com", RoleMember)
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "crm.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT name, table_name FROM _ferretdb_collections`)
	if err != nil {
		t.Fatalf("read the engine's collection list: %v", err)
	}
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			t.Fatal(err)
		}
		tables[name] = table
	}
	rows.Close()
	for _, coll := range []string{"users", "customers", "interactions", "refresh_tokens", "idempotency_keys"} {
		table, ok := tables[coll]
		if !ok {
			t.Errorf("no table for collection %s (have %v)", coll, tables)
			continue
		}
		var plan strings.Builder
		q := fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table)
		prows, err := db.QueryContext(t.Context(), q, "x")
		if err != nil {
			t.Fatalf("%s: %v", coll, err)
		}
		for prows.Next() {
			var id, parent, notused int
			var detail string
			if err := prows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(detail + "; ")
		}
		prows.Close()
		if !strings.Contains(plan.String(), "USING INDEX") {
			t.Errorf("a lookup by _id in %s (table %s) scans: plan %q", coll, table, plan.String())
		}
	}
}

// Start-up sends no command that fails (an alert on failed commands would
// fire at every deploy), and drops the index the name sort used before
// name_key, where a database still has it.
func TestOpenFailsNoCommandAndDropsTheOldNameIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	var mu sync.Mutex
	var failed []string
	var opening atomic.Bool // what Close sends may fail (FerretDB has no endSessions)
	monitor := &event.CommandMonitor{Failed: func(_ context.Context, e *event.CommandFailedEvent) {
		mu.Lock()
		defer mu.Unlock()
		if opening.Load() {
			failed = append(failed, e.CommandName+": "+e.Failure.Error())
		}
	}}
	for round := range 2 {
		opening.Store(true)
		s, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger, Monitor: monitor})
		opening.Store(false)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if round == 0 {
			if _, err := s.customers.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}, {Key: "_id", Value: 1}}}); err != nil {
				t.Fatal(err)
			}
		} else if ix := indexSet(t, s.customers.Collection); slices.Contains(ix, "name:1,_id:1") {
			t.Errorf("the old name index outlived a start: %v", ix)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Errorf("start-up sent commands that failed: %v", failed)
	}
}

// A database holding duplicate emails (written before the unique index
// existed) must stop start-up with a message that says what to do.
func TestOpenFailsClearlyOnDuplicateEmails(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.users.Indexes().DropOne(ctx, "email_1"); err != nil {
		t.Fatalf("drop the unique index: %v", err)
	}
	rawInsert(t, s.users.Collection, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "A"}, {Key: "email", Value: "dup@example.com"}})
	rawInsert(t, s.users.Collection, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "B"}, {Key: "email", Value: "dup@example.com"}})
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for attempt := 1; attempt <= 2; attempt++ {
		s, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
		if err == nil {
			s.Close(ctx)
			t.Fatalf("attempt %d: Open succeeded on a users collection with duplicate emails", attempt)
		}
		// A failed Open releases the data directory: the second attempt fails
		// for the same reason, not because the directory is "in use".
		if strings.Contains(err.Error(), "in use") {
			t.Fatalf("attempt %d: %v; the failed first attempt kept the data directory locked", attempt, err)
		}
		if !strings.Contains(err.Error(), `collection "users" holds duplicate email values`) {
			t.Errorf("attempt %d: Open error = %q, want the message that names the duplicate email values and says to remove them", attempt, err)
		}
	}
}

func TestOpenUnreachableFailsFast(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s, err := Open(t.Context(), Config{
		URI:     "mongodb://crmuser:s3cr3tpw@127.0.0.1:1/?serverSelectionTimeoutMS=500",
		Timeout: time.Second,
		Logger:  quietLogger,
	})
	elapsed := time.Since(start)
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Open of an unreachable URI succeeded")
	}
	if elapsed > 5*time.Second {
		t.Errorf("Open took %v to fail, want a few seconds at most", elapsed)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("error %v is not ErrUnavailable", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error %q does not name the host", msg)
	}
	if strings.Contains(msg, "s3cr3tpw") {
		t.Errorf("error %q leaks the password from the URI", msg)
	}
}

func TestOpenInvalidURI(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), Config{URI: "http://127.0.0.1:27017", Timeout: time.Second, Logger: quietLogger})
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Open accepted an http:// URI")
	}
	if !strings.Contains(err.Error(), "invalid MongoDB URI") {
		t.Errorf("error %q does not say the URI is invalid", err)
	}
}

func TestOpenDataDirInUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	first, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	defer first.Close(context.Background())

	second, err := Open(ctx, Config{DataDir: dir, Timeout: testTimeout, Logger: quietLogger})
	if err == nil {
		second.Close(context.Background())
		t.Fatal("second Open of a data directory in use succeeded")
	}
	if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), dir) {
		t.Errorf("second Open error %q, want one saying that %s is in use", err, dir)
	}
	// The refused second Open must not disturb the first (its socket, its lock).
	if err := first.Ping(ctx); err != nil {
		t.Errorf("first store after the refused second Open: Ping: %v", err)
	}
	mustCreateUser(t, first, "Still", "still@example.com", RoleMember)
}

func TestOpenUnwritableDataDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the data directory to open
		wantMsg string
	}{
		{
			name: "parent is a file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(f, "data")
			},
			wantMsg: "cannot create data directory",
		},
		{
			name: "data directory is a file",
			setup: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "data")
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return f
			},
			wantMsg: "cannot create data directory",
		},
		{
			name: "lock file cannot be written",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				if err := os.Mkdir(filepath.Join(dir, "LOCK"), 0o700); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			wantMsg: "is not writable",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			start := time.Now()
			s, err := Open(t.Context(), Config{DataDir: dir, Timeout: time.Second, Logger: quietLogger})
			if err == nil {
				s.Close(context.Background())
				t.Fatalf("Open(%s) succeeded", dir)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Open error %q, want it to contain %q and the directory", err, tc.wantMsg)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Open took %v to fail", d)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	plain := errors.New("something else")
	tests := []struct {
		name string
		in   error
		want error // nil: the result must be nil; plain: returned unchanged
	}{
		{"nil", nil, nil},
		{"no documents", mongo.ErrNoDocuments, ErrNotFound},
		{"wrapped no documents", fmt.Errorf("find: %w", mongo.ErrNoDocuments), ErrNotFound},
		{"write exception E11000", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000, Message: "E11000 duplicate key error"}}}, ErrDuplicate},
		{"command error E11000", mongo.CommandError{Code: 11000, Message: "E11000 duplicate key error"}, ErrDuplicate},
		{"embedded engine unique violation", mongo.CommandError{Code: 1, Name: "InternalError", Message: "constraint failed: UNIQUE constraint failed: index 'users_email_1' (2067)"}, ErrDuplicate},
		{"deadline", context.DeadlineExceeded, ErrUnavailable},
		{"topology closed", topology.ErrTopologyClosed, ErrUnavailable},
		{"client disconnected", mongo.ErrClientDisconnected, ErrUnavailable},
		{"server selection", topology.ServerSelectionError{Wrapped: errors.New("connection refused")}, ErrUnavailable},
		{"other command error", mongo.CommandError{Code: 2, Name: "BadValue", Message: "bad value"}, plain},
		{"other", plain, plain},
	}
	sentinels := []error{ErrNotFound, ErrDuplicate, ErrStale, ErrReferenced, ErrUnavailable}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := translate(tc.in)
			switch {
			case tc.in == nil:
				if got != nil {
					t.Fatalf("translate(nil) = %v", got)
				}
				return
			case tc.want == plain:
				for _, s := range sentinels {
					if errors.Is(got, s) {
						t.Errorf("translate(%v) = %v, which is %v", tc.in, got, s)
					}
				}
			case !errors.Is(got, tc.want):
				t.Errorf("translate(%v) = %v, want %v", tc.in, got, tc.want)
			}
			// The driver's error stays in the chain for the log.
			if got.Error() == "" || !strings.Contains(got.Error(), tc.in.Error()) {
				t.Errorf("translate(%v) = %q lost the original message", tc.in, got)
			}
			if reflect.TypeOf(tc.in).Comparable() && !errors.Is(got, tc.in) {
				t.Errorf("translate(%v) dropped the original error from the chain", tc.in)
			}
		})
	}
}

// The sentinel errors reach callers from real operations, not just from translate.
func TestTranslateOnRealErrors(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	if _, err := s.GetUser(ctx, bson.NewObjectID()); !errors.Is(err, ErrNotFound) || !errors.Is(err, mongo.ErrNoDocuments) {
		t.Errorf("GetUser of an unknown id = %v, want ErrNotFound wrapping mongo.ErrNoDocuments", err)
	}
	mustCreateUser(t, s, "A", "a@example.com", RoleMember)
	err := s.CreateUser(ctx, &User{Name: "B", Email: "a@example.com", Status: StatusActive, Role: RoleMember})
	if !errors.Is(err, ErrDuplicate) || !mongo.IsDuplicateKeyError(err) {
		t.Errorf("duplicate CreateUser = %v, want ErrDuplicate wrapping the driver's duplicate key error", err)
	}
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Ping(ctxDone); err == nil {
		t.Error("Ping with a cancelled context succeeded")
	}
}

func TestErrorTypes(t *testing.T) {
	t.Parallel()
	var err error = fmt.Errorf("delete: %w", &ReferencedError{By: "interactions"})
	if !errors.Is(err, ErrReferenced) || errors.Is(err, ErrNotFound) {
		t.Errorf("ReferencedError: Is(ErrReferenced)=%v Is(ErrNotFound)=%v", errors.Is(err, ErrReferenced), errors.Is(err, ErrNotFound))
	}
	var re *ReferencedError
	if !errors.As(err, &re) || re.By != "interactions" {
		t.Errorf("errors.As(ReferencedError) = %v, %+v", errors.As(err, &re), re)
	}
	if got := err.Error(); got != "delete: store: still referenced by interactions" {
		t.Errorf("message %q", got)
	}

	err = fmt.Errorf("create: %w", &MissingReferenceError{Field: "customer_id"})
	if !errors.Is(err, ErrMissingReference) || errors.Is(err, ErrReferenced) {
		t.Errorf("MissingReferenceError: Is(ErrMissingReference)=%v Is(ErrReferenced)=%v", errors.Is(err, ErrMissingReference), errors.Is(err, ErrReferenced))
	}
	var me *MissingReferenceError
	if !errors.As(err, &me) || me.Field != "customer_id" {
		t.Errorf("errors.As(MissingReferenceError) = %v, %+v", errors.As(err, &me), me)
	}
	if got := err.Error(); !strings.Contains(got, "customer_id") {
		t.Errorf("message %q does not name the field", got)
	}
}
