// Tests for the demo data: counts, re-running, valid references, variety, and
// the progress output in both of its forms.
package seed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/opencrm/crm/store"
	"github.com/opencrm/crm/store/seed"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// all lists every record of a kind through the store.
func all[T any](t *testing.T, list func(context.Context, store.ListOptions) (store.Page[T], error)) []T {
	t.Helper()
	var out []T
	opts := store.ListOptions{Sort: store.Sort{Field: "created_at"}, Limit: 200}
	for {
		page, err := list(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Items...)
		if page.Next == nil {
			return out
		}
		opts.After = page.Next
	}
}

func TestSeedCreatesValidVariedData(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	var progress bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&progress, nil))
	res, err := seed.Run(ctx, st, seed.Config{Users: 7, Customers: 60, Interactions: 250, PasswordHash: "x", BatchSize: 40, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if res != (seed.Result{Users: 7, Customers: 60, Interactions: 250}) {
		t.Fatalf("result %+v", res)
	}
	// The account `crm seed` tells to sign in with exists and administers.
	if admin, err := st.GetUserByEmail(ctx, seed.AdminEmail()); err != nil || !admin.IsActiveAdmin() {
		t.Errorf("seed.AdminEmail() %q: %+v, %v; want an active admin", seed.AdminEmail(), admin, err)
	}

	users := all(t, func(ctx context.Context, o store.ListOptions) (store.Page[store.User], error) {
		return st.ListUsers(ctx, store.UserFilter{}, o)
	})
	customers := all(t, func(ctx context.Context, o store.ListOptions) (store.Page[store.Customer], error) {
		return st.ListCustomers(ctx, store.CustomerFilter{}, o)
	})
	interactions := all(t, func(ctx context.Context, o store.ListOptions) (store.Page[store.Interaction], error) {
		return st.ListInteractions(ctx, store.InteractionFilter{}, o)
	})
	if len(users) != 7 || len(customers) != 60 || len(interactions) != 250 {
		t.Fatalf("stored %d users, %d customers, %d interactions", len(users), len(customers), len(interactions))
	}

	userIDs, customerIDs := map[string]bool{}, map[string]bool{}
	admins := 0
	for _, u := range users {
		userIDs[u.ID.Hex()] = true
		if u.IsActiveAdmin() {
			admins++
		}
	}
	if admins == 0 {
		t.Error("no active admin among the seeded users")
	}
	companies, emails := map[string]bool{}, map[string]bool{}
	for _, c := range customers {
		customerIDs[c.ID.Hex()] = true
		companies[c.Company] = true
		emails[c.Email] = true
		if c.OwnerID == nil || !userIDs[c.OwnerID.Hex()] {
			t.Errorf("customer %s has owner %v, not a seeded user", c.ID.Hex(), c.OwnerID)
		}
	}
	if len(emails) != len(customers) || len(companies) < 5 {
		t.Errorf("%d distinct emails for %d customers, %d companies", len(emails), len(customers), len(companies))
	}
	types, statuses := map[string]bool{}, map[string]bool{}
	oldest, newest := interactions[0].CreatedAt, interactions[0].CreatedAt
	for _, it := range interactions {
		types[it.Type], statuses[it.Status] = true, true
		if !customerIDs[it.CustomerID.Hex()] || !userIDs[it.UserID.Hex()] {
			t.Errorf("interaction %s refers to a missing customer or user", it.ID.Hex())
		}
		oldest, newest = minTime(oldest, it.CreatedAt), maxTime(newest, it.CreatedAt)
		if it.UpdatedAt.Before(it.CreatedAt) {
			t.Errorf("interaction %s updated %v before it was created %v", it.ID.Hex(), it.UpdatedAt, it.CreatedAt)
		}
	}
	if now := time.Now(); newest.After(now) || oldest.Before(now.AddDate(-2, 0, -1)) {
		t.Errorf("interactions created from %v to %v, want within the two years before now", oldest, newest)
	}
	if len(types) != len(store.InteractionTypes) || len(statuses) != len(store.InteractionStatuses) {
		t.Errorf("types %v, statuses %v: not every kind appears", types, statuses)
	}
	if spread := newest.Sub(oldest).Hours() / 24; spread < 365 {
		t.Errorf("interactions span %.0f days, want about two years", spread)
	}
	// Off a terminal, progress is log records, which a program can read.
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	var last struct {
		Msg         string
		Done, Total int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("the last progress line is not JSON: %v\n%s", err, progress.String())
	}
	if last.Done != 317 || last.Total != 317 || !strings.Contains(last.Msg, "seeded 317/317 records (100%)") {
		t.Errorf("the last progress record: %+v", last)
	}
}

func TestSeedAgainSkipsWhatExists(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	cfg := seed.Config{Users: 3, Customers: 20, Interactions: 30, PasswordHash: "x"}
	if _, err := seed.Run(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	res, err := seed.Run(ctx, st, cfg)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if res != (seed.Result{}) {
		t.Errorf("re-run created %+v, want nothing", res)
	}
	cfg.Customers = 25
	res, err = seed.Run(ctx, st, cfg)
	if err != nil || res != (seed.Result{Customers: 5}) {
		t.Errorf("growing the count: %+v, %v; want 5 new customers", res, err)
	}
}

func TestSeedProgressBarOnTerminal(t *testing.T) {
	st := openStore(t)
	var out bytes.Buffer
	if _, err := seed.Run(context.Background(), st, seed.Config{Users: 2, Customers: 10, PasswordHash: "x", BatchSize: 4, Bar: &out}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "\r[") < 3 || !strings.Contains(s, "100% 12/12") || !strings.Contains(s, "records/s") || !strings.Contains(s, "ETA") {
		t.Errorf("terminal progress: %q", s)
	}
}

// Counts that cannot be met, or that would overflow the arithmetic, are
// refused with a reason before anything is written.
func TestSeedRefusesImpossibleCounts(t *testing.T) {
	st := openStore(t)
	for _, tc := range []struct {
		cfg  seed.Config
		want string
	}{
		{seed.Config{Customers: 1}, "at least 1 user"},
		{seed.Config{Interactions: 1}, "at least 1 user"},
		{seed.Config{Users: 1, Interactions: 1}, "at least 1 customer"},
		{seed.Config{Users: -1}, "from 0 to"},
		{seed.Config{Users: 1, Customers: 1, Interactions: seed.MaxCount + 1}, "10000001 interactions"},
		{seed.Config{Users: 1, Customers: 1, Interactions: math.MaxInt}, "from 0 to 10000000"},
	} {
		if err := tc.cfg.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := seed.Run(context.Background(), st, seed.Config{Users: 2, Interactions: 1}); err == nil {
		t.Error("Run does not check the counts")
	}
	if users := all(t, func(ctx context.Context, o store.ListOptions) (store.Page[store.User], error) {
		return st.ListUsers(ctx, store.UserFilter{}, o)
	}); len(users) != 0 {
		t.Errorf("refused seeds wrote %d users", len(users))
	}
}

// Seeding adds admins with a known password: a database with users that it did
// not create is refused, unchanged, unless forced.
func TestSeedRefusesForeignUsers(t *testing.T) {
	ctx := context.Background()
	listUsers := func(st *store.Store) []store.User {
		return all(t, func(ctx context.Context, o store.ListOptions) (store.Page[store.User], error) {
			return st.ListUsers(ctx, store.UserFilter{}, o)
		})
	}
	cfg := seed.Config{Users: 3, Customers: 5, Interactions: 5, PasswordHash: "x"}

	// A seeded database, and the same with a seeded user renamed (the seed made
	// it: its id and email are unchanged), may be seeded again.
	st := openStore(t)
	if _, err := seed.Run(ctx, st, cfg); err != nil {
		t.Fatal(err)
	}
	u := listUsers(st)[0]
	name := "Renamed"
	if _, err := st.UpdateUser(ctx, u.ID, u.Revision, store.UserChanges{Name: &name}); err != nil {
		t.Fatal(err)
	}
	cfg.Customers = 6
	if res, err := seed.Run(ctx, st, cfg); err != nil || res.Customers != 1 {
		t.Fatalf("a seeded database: %+v, %v", res, err)
	}

	for _, real := range []store.User{
		{Name: "Real Person", Email: "real@company.example"},
		// Has the first seeded user's email, but is not the seed's record.
		{Name: "Look Alike", Email: seed.AdminEmail()},
	} {
		t.Run(real.Email, func(t *testing.T) {
			st := openStore(t)
			real.Role, real.Status, real.PasswordHash = store.RoleAdmin, store.StatusActive, "y"
			if err := st.CreateUser(ctx, &real); err != nil {
				t.Fatal(err)
			}
			_, err := seed.Run(ctx, st, cfg)
			if !errors.Is(err, seed.ErrForeignUsers) {
				t.Fatalf("seeding next to %s: %v, want ErrForeignUsers", real.Email, err)
			}
			if users := listUsers(st); len(users) != 1 {
				t.Errorf("the refused seed left %d users, want the 1 there was", len(users))
			}
			forced := cfg
			forced.Force = true
			if res, err := seed.Run(ctx, st, forced); err != nil || res.Customers != cfg.Customers {
				t.Errorf("forced: %+v, %v", res, err)
			}
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
