// Package store persists the CRM's users, customers and interactions in MongoDB
// through the official Go driver (go.mongodb.org/mongo-driver/v2).
//
// With no MongoDB URI configured it starts an embedded MongoDB-compatible engine
// (FerretDB on SQLite) inside the process, so that the API runs with no set-up.
// The code is written for real MongoDB first: every query it makes is correct and
// index-backed there, and the embedded engine merely has to give the same answers.
//
// The package speaks in its own types and sentinel errors (ErrNotFound, ErrDuplicate,
// …); it knows nothing of HTTP or of the generated API types.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Collection names. Users, customers and interactions keep the original CRM's
// names so that a database it wrote can be served.
const (
	usersCollection         = "users"
	customersCollection     = "customers"
	interactionsCollection  = "interactions"
	metaCollection          = "meta"
	refreshTokensCollection = "refresh_tokens"
	idempotencyCollection   = "idempotency_keys"
	claimsCollection        = "claims"
)

// Field names shared by several collections. Resource-specific names sit beside
// their documents.
const (
	fieldID        = "_id"
	fieldCreatedAt = "created_at"
	fieldUpdatedAt = "updated_at"
	fieldRevision  = "revision"
	fieldEmail     = "email"
	fieldName      = "name"
	fieldNameKey   = "name_key" // see sortKey
	fieldStatus    = "status"
	fieldCompany   = "company"
)

// Config says which database to use.
type Config struct {
	// URI of a MongoDB deployment. Empty starts the embedded engine in DataDir.
	URI string
	// Database name; "crm" when empty.
	Database string
	// DataDir holds the embedded engine's files; "./data" when empty. Unused with URI.
	DataDir string
	// Timeout bounds every database operation; 5 s when zero.
	Timeout time.Duration
	// Logger receives the store's own messages; slog.Default() when nil.
	Logger *slog.Logger
	// Monitor, if set, observes every database command (for metrics).
	Monitor *event.CommandMonitor
}

// Store is a handle on the CRM database. It is safe for concurrent use.
type Store struct {
	client  *mongo.Client
	db      *mongo.Database
	engine  *engine // nil when URI points at an external MongoDB
	timeout time.Duration
	log     *slog.Logger

	users, customers, interactions           collection
	deletions                                collection
	meta, refreshTokens, idempotency, claims collection
	lists                                    gate // see gate

	// filterByIDOnly is set on the embedded engine (and on FerretDB behind a
	// URI), which only uses an index for filters that are exactly {_id: X}:
	// conditional writes then check their condition in Go; see write.go.
	filterByIDOnly bool
	// sharedEngine: FerretDB behind a URI, which other API processes may
	// write to as well; conditional writes then also claim their step (write.go).
	sharedEngine bool

	docLocks [64]sync.Mutex
	adminMu  sync.Mutex // serialises changes that could remove the last admin

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

// Open connects to the database (starting the embedded engine first when
// cfg.URI is empty), checks that it answers, and creates the indexes. It fails
// within cfg.Timeout rather than waiting for a database that is not there.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Database == "" {
		cfg.Database = "crm"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	s := &Store{timeout: cfg.Timeout, log: cfg.Logger}
	uri := cfg.URI
	if uri == "" {
		eng, err := startEngine(cfg.DataDir, cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.engine = eng
		uri = eng.uri
	}

	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(cfg.Timeout).
		SetConnectTimeout(cfg.Timeout).
		SetAppName("crm").
		SetMonitor(cfg.Monitor)
	if s.engine != nil {
		opts.SetMaxPoolSize(embeddedPoolSize)
	}
	if err := opts.Validate(); err != nil {
		s.stopEngine()
		return nil, fmt.Errorf("invalid MongoDB URI: %w", err)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		s.stopEngine()
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	s.client = client
	s.db = client.Database(cfg.Database)
	var writes gate
	if s.engine != nil {
		writes = make(gate, 1)
		s.lists = make(gate, runtime.GOMAXPROCS(0))
	}
	coll := func(name string) collection { return collection{s.db.Collection(name), writes} }
	s.users = coll(usersCollection)
	s.customers = coll(customersCollection)
	s.interactions = coll(interactionsCollection)
	s.deletions = coll(deletionsCollection)
	s.meta = coll(metaCollection)
	s.refreshTokens = coll(refreshTokensCollection)
	s.idempotency = coll(idempotencyCollection)
	s.claims = coll(claimsCollection)

	if err := s.Ping(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("database at %s does not answer: %w", hostsOf(uri), err)
	}
	if s.filterByIDOnly, err = s.isFerretDB(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("identify the database server: %w", err)
	}
	s.sharedEngine = s.filterByIDOnly && s.engine == nil
	if err := s.createIndexes(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("create indexes: %w", err)
	}
	if s.engine != nil {
		if err := indexIDLookups(ctx, s.engine.dir); err != nil {
			_ = s.Close(context.Background())
			return nil, fmt.Errorf("index the embedded database: %w", err)
		}
	}
	s.startJanitor()
	return s, nil
}

// embeddedPoolSize caps the connections to the embedded engine. Its work is
// this process's CPU: past a few dozen operations at once, more only compete
// with each other (and with the write holding the write gate). With 128
// concurrent clients, capping at 32 instead of the driver's 100 doubled the
// requests served and tripled the writes (BenchmarkConcurrentLoad); a lower
// cap let a handful of slow list requests hold every connection and stall
// the quick ones behind them for seconds.
const embeddedPoolSize = 32

// janitorInterval is how often expired refresh tokens and idempotency keys,
// and the traces of deletions past DeletionRetention, are deleted. The expiry
// of tokens and keys is checked when they are used, so for them this only
// reclaims space; a trace is listed until the janitor deletes it.
const janitorInterval = 10 * time.Minute

// deleteBefore deletes the documents of coll whose time field is before
// cutoff, and says how many there were.
func (s *Store) deleteBefore(ctx context.Context, coll collection, field string, cutoff time.Time) (int64, error) {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := coll.DeleteMany(ctx, bson.D{{Key: field, Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	if err != nil {
		return 0, translate(err)
	}
	return res.DeletedCount, nil
}

// startJanitor deletes expired records periodically: the embedded engine has
// no TTL indexes, so the store does it itself (on MongoDB too, for one code path).
func (s *Store) startJanitor() {
	log := s.log
	ctx, cancel := context.WithCancel(context.Background())
	s.stopJanitor, s.janitorDone = cancel, make(chan struct{})
	go func() {
		defer close(s.janitorDone)
		tick := time.NewTicker(janitorInterval)
		defer tick.Stop()
		for {
			// Documents the original CRM wrote, before this server started
			// or since, get the key that sorts them by name.
			if err := s.fillNameKeys(ctx); err != nil && ctx.Err() == nil {
				log.Warn("filling name sort keys", "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cutoff := time.Now()
			if _, err := s.DeleteExpiredRefreshTokens(ctx, cutoff); err != nil && ctx.Err() == nil {
				log.Warn("deleting expired refresh tokens", "error", err)
			}
			if _, err := s.DeleteExpiredIdempotencyKeys(ctx, cutoff); err != nil && ctx.Err() == nil {
				log.Warn("deleting expired idempotency keys", "error", err)
			}
			if _, err := s.deleteBefore(ctx, s.deletions, deletionFieldDeletedAt, cutoff.Add(-DeletionRetention)); err != nil && ctx.Err() == nil {
				log.Warn("deleting old deletions", "error", err)
			}
			// Claims are given back once written; old ones were abandoned.
			if _, err := s.deleteBefore(ctx, s.claims, fieldCreatedAt, cutoff.Add(-time.Hour)); err != nil && ctx.Err() == nil {
				log.Warn("deleting old claims", "error", err)
			}
		}
	}()
}

// EngineURI is the MongoDB URI of the embedded engine (a Unix socket in the
// data directory), for inspecting its data with mongosh or the driver; empty
// with an external MongoDB.
func (s *Store) EngineURI() string {
	if s.engine == nil {
		return ""
	}
	return s.engine.uri
}

// Ping checks that the database answers within the store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	return translate(s.client.Ping(ctx, readpref.Primary()))
}

// isFerretDB asks the server whether it is FerretDB, which says so in buildInfo.
func (s *Store) isFerretDB(ctx context.Context) (bool, error) {
	if s.engine != nil {
		return true, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	info, err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Raw()
	if err != nil {
		return false, translate(err)
	}
	_, lookupErr := info.LookupErr("ferretdbVersion")
	return lookupErr == nil, nil
}

// Close disconnects from the database and stops the embedded engine, if any.
func (s *Store) Close(ctx context.Context) error {
	if s.stopJanitor != nil {
		s.stopJanitor()
		<-s.janitorDone
	}
	var err error
	if s.client != nil {
		err = s.client.Disconnect(ctx)
	}
	s.stopEngine()
	return err
}

func (s *Store) stopEngine() {
	if s.engine != nil {
		s.engine.stop()
	}
}

// opContext bounds one database operation by the store's timeout, so that a
// database that stops answering turns into ErrUnavailable instead of a hang.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// lockDoc serialises writes to one document within this process and returns
// the unlock function.
//
// Why: the embedded engine applies an update as read-modify-write of the whole
// document without a transaction, so two concurrent updates of one document can
// lose one of them — including the conditional update on "revision" that
// If-Match relies on. MongoDB applies each update atomically, where this lock is
// merely redundant. Writes to different documents rarely share a stripe.
func (s *Store) lockDoc(id bson.ObjectID) func() { return s.lockKey(id[:]) }

// lockKey is lockDoc for documents whose id is not an ObjectID.
func (s *Store) lockKey(key []byte) func() {
	m := s.docLock(key)
	m.Lock()
	return m.Unlock
}

// docLock is the lock of the stripe that key falls in.
func (s *Store) docLock(key []byte) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return &s.docLocks[h.Sum32()%uint32(len(s.docLocks))]
}

// now is the time stamped on writes: UTC, at the millisecond precision that
// BSON dates keep, so that what is returned equals what is read back later.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

// index is one index the store relies on.
type index struct {
	coll   collection
	keys   bson.D
	unique bool
}

// indexes lists every index, with the queries it serves. The README's table of
// which index serves which query is kept in step with this list.
func (s *Store) indexes() []index {
	desc := func(field string) bson.D { return bson.D{{Key: field, Value: -1}, {Key: fieldID, Value: -1}} }
	after := func(prefix string, rest bson.D) bson.D { return append(bson.D{{Key: prefix, Value: 1}}, rest...) }
	return []index{
		// Users: login and uniqueness by email; the list sorts.
		{s.users, bson.D{{Key: fieldEmail, Value: 1}}, true},
		{s.users, desc(fieldCreatedAt), false},
		{s.users, desc(fieldUpdatedAt), false},
		{s.users, bson.D{{Key: fieldNameKey, Value: 1}, {Key: fieldID, Value: 1}}, false},
		{s.users, after(userFieldRole, desc(fieldCreatedAt)), false},
		{s.users, after(fieldStatus, desc(fieldCreatedAt)), false},

		// Customers: uniqueness by email; each list filter followed by the default sort.
		{s.customers, bson.D{{Key: fieldEmail, Value: 1}}, true},
		{s.customers, desc(fieldCreatedAt), false},
		{s.customers, desc(fieldUpdatedAt), false},
		{s.customers, bson.D{{Key: fieldNameKey, Value: 1}, {Key: fieldID, Value: 1}}, false},
		{s.customers, after(fieldStatus, desc(fieldCreatedAt)), false},
		{s.customers, after(fieldCompany, desc(fieldCreatedAt)), false},
		{s.customers, after(customerFieldOwnerID, desc(fieldCreatedAt)), false},
		{s.customers, after(customerFieldTags, desc(fieldCreatedAt)), false},

		// Interactions: the timeline (by customer), by user, and the global list.
		{s.interactions, after(interactionFieldCustomerID, desc(fieldCreatedAt)), false},
		{s.interactions, after(interactionFieldCustomerID, desc(interactionFieldScheduledAt)), false},
		{s.interactions, after(interactionFieldUserID, desc(fieldCreatedAt)), false},
		{s.interactions, desc(fieldCreatedAt), false},
		{s.interactions, desc(interactionFieldScheduledAt), false},
		{s.interactions, desc(fieldUpdatedAt), false},
		{s.interactions, after(fieldStatus, desc(fieldCreatedAt)), false},
		{s.interactions, after(interactionFieldType, desc(fieldCreatedAt)), false},

		// Deletions: the sync feed, by time (of a kind of record, or all),
		// and the periodic sweep of old ones.
		{s.deletions, bson.D{{Key: deletionFieldRecordID, Value: 1}}, true}, // one trace per record
		{s.deletions, bson.D{{Key: deletionFieldDeletedAt, Value: 1}, {Key: fieldID, Value: 1}}, false},
		{s.deletions, bson.D{{Key: deletionFieldRecord, Value: 1}, {Key: deletionFieldDeletedAt, Value: 1}, {Key: fieldID, Value: 1}}, false},

		// Refresh tokens: revoking a whole family or all of a user's tokens, and
		// the periodic sweep of expired ones.
		{s.refreshTokens, bson.D{{Key: refreshFieldFamily, Value: 1}}, false},
		{s.refreshTokens, bson.D{{Key: refreshFieldUserID, Value: 1}}, false},
		{s.refreshTokens, bson.D{{Key: refreshFieldExpiresAt, Value: 1}}, false},
		// Idempotency keys: the periodic sweep of expired ones.
		{s.idempotency, bson.D{{Key: idempotencyFieldExpiresAt, Value: 1}}, false},
		// Claims (shared engine only): the periodic sweep of old ones.
		{s.claims, bson.D{{Key: fieldCreatedAt, Value: 1}}, false},
	}
}

// createIndexes creates every index (a no-op for those that exist). A failure
// stops start-up: without the unique indexes, duplicate emails could be stored.
func (s *Store) createIndexes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 6*s.timeout)
	defer cancel()
	for _, ix := range s.indexes() {
		model := mongo.IndexModel{Keys: ix.keys}
		if ix.unique {
			model.Options = options.Index().SetUnique(true)
		}
		if _, err := ix.coll.Indexes().CreateOne(ctx, model); err != nil {
			if ix.unique && errors.Is(translate(err), ErrDuplicate) {
				return fmt.Errorf("collection %q holds duplicate %v values; remove the duplicates, then start again: %w",
					ix.coll.Name(), ix.keys[0].Key, err)
			}
			return fmt.Errorf("collection %q, index %v: %w", ix.coll.Name(), ix.keys, translate(err))
		}
	}
	// The name sort used the name itself before it used name_key. Dropped
	// only if there: a drop that fails for want of the index would count as
	// a failed command in the metrics at every start. (Two servers starting
	// at once may both see it; the second drop's IndexNotFound is fine.)
	for _, coll := range []collection{s.users, s.customers} {
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			return fmt.Errorf("collection %q, list indexes: %w", coll.Name(), translate(err))
		}
		if !slices.ContainsFunc(specs, func(ix mongo.IndexSpecification) bool { return ix.Name == oldNameIndex }) {
			continue
		}
		var ce mongo.CommandError
		if err := coll.Indexes().DropOne(ctx, oldNameIndex); err != nil && !(errors.As(err, &ce) && ce.Code == indexNotFoundCode) {
			return fmt.Errorf("collection %q, drop the index on name: %w", coll.Name(), translate(err))
		}
	}
	return nil
}

// oldNameIndex is the index the name sort used before name_key.
const oldNameIndex = "name_1__id_1"

// indexNotFoundCode is MongoDB's IndexNotFound.
const indexNotFoundCode = 27

// hostsOf names the hosts of a MongoDB URI for messages, leaving out the
// credentials that the URI may carry.
func hostsOf(uri string) string {
	hosts := options.Client().ApplyURI(uri).Hosts
	if len(hosts) == 0 {
		return "the configured URI"
	}
	return strings.Join(hosts, ",")
}
