// Package seed fills a CRM database with realistic, varied demo data through the
// store: users, customers and interactions with names, companies, emails, tags,
// types, statuses and dates spread over two years, written in batches.
//
// The data is a pure function of the counts: record i of each kind always has
// the same id and email. Re-running a seed therefore skips what exists (no
// duplicate-email errors) and only adds what a larger count asks for.
package seed

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/store"
)

// Config says how much to create.
type Config struct {
	// Users, Customers and Interactions are how many of each kind's seeded
	// records, from the first, should exist: records that do are kept, so a
	// count is not how many to add.
	Users, Customers, Interactions int
	// PasswordHash is stored for every new user: hashing once keeps seeding fast.
	PasswordHash string
	// Force seeds a database even when it holds users that seeding did not
	// create (see ErrForeignUsers).
	Force bool
	// BatchSize is the number of records per insert; 500 when zero.
	BatchSize int
	// Bar, if set, is a terminal on which progress is drawn as a bar redrawn
	// in place.
	Bar io.Writer
	// Log, if set and Bar is not, receives a progress record every few seconds.
	Log *slog.Logger
	// Now anchors the two years of dates; time.Now() when zero.
	Now time.Time
}

// MaxCount is the most records of one kind that a seed makes: demo data, not
// a load generator, and far from where the counts and the progress arithmetic
// would overflow.
const MaxCount = 10_000_000

// Check reports counts that Run would refuse, before anything is opened.
func (cfg Config) Check() error {
	for _, c := range []struct {
		kind string
		n    int
	}{{"users", cfg.Users}, {"customers", cfg.Customers}, {"interactions", cfg.Interactions}} {
		if c.n < 0 || c.n > MaxCount {
			return fmt.Errorf("%d %s: each count must be from 0 to %d", c.n, c.kind, MaxCount)
		}
	}
	// Record i of each kind refers to users and customers among the first
	// Users and Customers: they must be asked for, even when they exist.
	const counts = "a count names the first N seeded records (those that exist are kept), not how many to add"
	if cfg.Users < 1 && (cfg.Customers > 0 || cfg.Interactions > 0) {
		return errors.New("customers and interactions need at least 1 user: seeded customers belong to seeded users, and " + counts +
			"; give the users count of the earlier seed to add only customers or interactions")
	}
	if cfg.Customers < 1 && cfg.Interactions > 0 {
		return errors.New("interactions need at least 1 customer: seeded interactions are between seeded users and seeded customers, and " + counts +
			"; give the customers count of the earlier seed to add only interactions")
	}
	return nil
}

// ErrForeignUsers is Run's refusal of a database that holds users it did not
// create: every seeded user has the same password, often the public default,
// and the first is an admin, so seeding a real database would open it to
// anyone who has read the README.
var ErrForeignUsers = errors.New("the database holds users that seeding did not create")

// Result counts what was new.
type Result struct {
	Users, Customers, Interactions int
}

// AdminEmail is the email of the first seeded user, always an active admin:
// the account to sign in with on a database that seeding started.
func AdminEmail() string { return generator{}.user(0).Email }

// span is how far back the generated records reach.
const span = 2 * 365 * 24 * time.Hour

// Run seeds st. Users come first (customers are owned by them), then customers,
// then interactions. It changes nothing when cfg fails Check, or when st holds
// users that seeding did not create and cfg.Force is not set (ErrForeignUsers).
func Run(ctx context.Context, st *store.Store, cfg Config) (Result, error) {
	if err := cfg.Check(); err != nil {
		return Result{}, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if !cfg.Force {
		if err := checkUsers(ctx, st); err != nil {
			return Result{}, err
		}
	}
	g := generator{now: cfg.Now.UTC().Truncate(time.Millisecond), users: cfg.Users, customers: cfg.Customers, hash: cfg.PasswordHash}
	p := newProgress(cfg.Bar, cfg.Log, cfg.Users+cfg.Customers+cfg.Interactions)
	defer p.finish()

	var res Result
	var err error
	if res.Users, err = inBatches(ctx, cfg.Users, cfg.BatchSize, p, g.user, st.ImportUsers); err != nil {
		return res, fmt.Errorf("users: %w", err)
	}
	if res.Customers, err = inBatches(ctx, cfg.Customers, cfg.BatchSize, p, g.customer, st.ImportCustomers); err != nil {
		return res, fmt.Errorf("customers: %w", err)
	}
	if res.Interactions, err = inBatches(ctx, cfg.Interactions, cfg.BatchSize, p, g.interaction, st.ImportInteractions); err != nil {
		return res, fmt.Errorf("interactions: %w", err)
	}
	return res, nil
}

// checkUsers returns ErrForeignUsers if st holds a user that seeding did not
// make. It reads the users until it finds one: a demo database has tens of
// them, a real one shows itself soon.
func checkUsers(ctx context.Context, st *store.Store) error {
	opts := store.ListOptions{Sort: store.Sort{Field: "created_at"}, Limit: 1000}
	for {
		page, err := st.ListUsers(ctx, store.UserFilter{}, opts)
		if err != nil {
			return fmt.Errorf("users: %w", err)
		}
		for _, u := range page.Items {
			if !isSeeded(u) {
				return ErrForeignUsers
			}
		}
		if page.Next == nil {
			return nil
		}
		opts.After = page.Next
	}
}

// isSeeded reports whether u is seeded user i, i being the number that ends
// its email's local part: seeded ids are hashes that nothing else makes.
func isSeeded(u store.User) bool {
	local, ok := strings.CutSuffix(u.Email, seededUserDomain)
	if !ok {
		return false
	}
	i, err := strconv.Atoi(local[strings.LastIndexFunc(local, func(r rune) bool { return r < '0' || r > '9' })+1:])
	return err == nil && u.ID == id("user", i)
}

// inBatches makes n records with record and writes them batch by batch.
func inBatches[T any](ctx context.Context, n, size int, p *progress, record func(int) T, write func(context.Context, []T) (int, error)) (int, error) {
	created := 0
	batch := make([]T, 0, min(size, n))
	for i := range n {
		batch = append(batch, record(i))
		if len(batch) == size || i == n-1 {
			if err := ctx.Err(); err != nil {
				return created, err
			}
			k, err := write(ctx, batch)
			created += k
			if err != nil {
				return created, err
			}
			p.add(len(batch))
			batch = batch[:0]
		}
	}
	return created, nil
}

// generator derives record i of each kind from i alone.
type generator struct {
	now              time.Time
	users, customers int
	hash             string
}

// rng is a random source fixed by the kind and index of a record.
func rng(kind string, i int) *rand.Rand {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", kind, i)))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
}

// id is record i's ObjectID: a hash of kind and index, the same on every run
// (its timestamp part is therefore meaningless; created_at holds the time).
func id(kind string, i int) bson.ObjectID {
	var oid bson.ObjectID
	sum := sha256.Sum256([]byte(fmt.Sprintf("id/%s/%d", kind, i)))
	copy(oid[:], sum[:len(oid)])
	return oid
}

// createdAt spreads records over the span, later indexes later.
func (g generator) createdAt(r *rand.Rand, i, n int) time.Time {
	frac := (float64(i) + r.Float64()) / float64(max(n, 1))
	return g.now.Add(-span + time.Duration(frac*float64(span))).Truncate(time.Millisecond)
}

// seededUserDomain ends every seeded user's email.
const seededUserDomain = "@staff.example.com"

func (g generator) user(i int) store.User {
	r := rng("user", i)
	created := g.createdAt(r, i, g.users)
	first, last := pick(r, firstNames), pick(r, lastNames)
	role, status := store.RoleMember, store.StatusActive
	if i == 0 || r.IntN(10) == 0 {
		role = store.RoleAdmin
	}
	if i > 0 && r.IntN(15) == 0 {
		status = store.StatusInactive
	}
	return store.User{
		ID:           id("user", i),
		Name:         first + " " + last,
		Email:        fmt.Sprintf("%s.%s.%d%s", slug(first), slug(last), i, seededUserDomain),
		PasswordHash: g.hash,
		Company:      "Example CRM Team",
		Role:         role,
		Status:       status,
		CreatedAt:    created,
		UpdatedAt:    created.Add(time.Duration(r.IntN(48)) * time.Hour).Truncate(time.Millisecond),
		Revision:     1,
	}
}

func (g generator) customer(i int) store.Customer {
	r := rng("customer", i)
	created := g.createdAt(r, i, g.customers)
	first, last, company := pick(r, firstNames), pick(r, lastNames), pick(r, companies)
	owner := id("user", r.IntN(g.users))
	c := store.Customer{
		ID:        id("customer", i),
		Name:      first + " " + last,
		Email:     fmt.Sprintf("%s.%s.%d@%s", slug(first), slug(last), i, domain(company)),
		Phone:     fmt.Sprintf("+1 555 %04d", r.IntN(10000)),
		Company:   company,
		Status:    store.StatusActive,
		OwnerID:   &owner,
		CreatedAt: created,
		UpdatedAt: laterThan(r, created, g.now),
		Revision:  1 + int64(r.IntN(4)),
	}
	if r.IntN(8) == 0 {
		c.Status = store.StatusInactive
	}
	for range r.IntN(4) {
		if t := pick(r, tags); !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	if r.IntN(3) == 0 {
		c.Notes = pick(r, customerNotes)
	}
	return c
}

func (g generator) interaction(i int) store.Interaction {
	r := rng("interaction", i)
	created := g.createdAt(r, 0, 1) // interactions are spread over the span at random
	typ := pick(r, store.InteractionTypes)
	it := store.Interaction{
		ID:          id("interaction", i),
		UserID:      id("user", r.IntN(g.users)),
		CustomerID:  id("customer", r.IntN(g.customers)),
		Type:        typ,
		Description: fmt.Sprintf(pick(r, descriptions), strings.ToLower(typ)),
		Status:      weighted(r, store.InteractionStatuses, []int{3, 2, 6, 1}),
		CreatedAt:   created,
		UpdatedAt:   laterThan(r, created, g.now),
		Revision:    1 + int64(r.IntN(3)),
	}
	if typ == "Meeting" || typ == "Call" || typ == "Task" || r.IntN(4) == 0 {
		at := created.Add(time.Duration(r.IntN(30*24)) * time.Hour).Truncate(time.Minute)
		it.ScheduledAt = &at
	}
	return it
}

// laterThan is a time between t and now.
func laterThan(r *rand.Rand, t, now time.Time) time.Time {
	return t.Add(time.Duration(r.Float64() * float64(now.Sub(t)))).Truncate(time.Millisecond)
}

func pick[T any](r *rand.Rand, from []T) T { return from[r.IntN(len(from))] }

func weighted(r *rand.Rand, values []string, weights []int) string {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return values[i]
		}
		n -= w
	}
	return values[len(values)-1]
}

func slug(s string) string { return strings.ToLower(slugReplacer.Replace(s)) }

var slugReplacer = strings.NewReplacer(" ", "", "'", "", "&", "and", ".", "")

func domain(company string) string {
	return slug(strings.Fields(company)[0]) + ".example"
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances",
		"Edsger", "Radia", "Tim", "Hedy", "John", "Sophie", "Donald", "Anita", "Niklaus", "Shafi", "Claude", "Jean",
		"Yukihiro", "Leslie", "Guido", "Karen", "Bjarne", "Mary", "Robert", "Lynn"}
	lastNames = []string{"Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
		"Allen", "Dijkstra", "Perlman", "Berners-Lee", "Lamarr", "McCarthy", "Wilson", "Knuth", "Borg", "Wirth",
		"Goldwasser", "Shannon", "Sammet", "Matsumoto", "Lamport", "van Rossum", "Spärck Jones", "Stroustrup",
		"Kenneth", "Kahn", "Conway"}
	companies = []string{"Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
		"Hooli", "Pied Piper", "Vandelay Industries", "Soylent Foods", "Tyrell Systems", "Cyberdyne", "Wonka Confections",
		"Gringotts Bank", "Oceanic Airlines", "Monsters Inc", "Dunder Mifflin", "Sterling Cooper", "Aperture Labs", "Massive Dynamic"}
	tags          = []string{"vip", "enterprise", "smb", "trial", "churn-risk", "partner", "newsletter", "upsell", "renewal", "emea", "apac", "americas"}
	customerNotes = []string{"Prefers email over calls.", "Decision maker is the CTO.", "Budget approved for next quarter.",
		"Asked for a discount on the annual plan.", "Referred by an existing customer.", "Evaluating two competitors."}
	descriptions = []string{"Quarterly review %s.", "Follow-up %s about the renewal.", "Onboarding %s with the new team.",
		"Support %s: login problems.", "Pricing %s for the enterprise plan.", "Intro %s after the webinar.",
		"Escalated %s from the support queue.", "Check-in %s before the contract ends."}
)
