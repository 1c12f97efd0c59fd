// Tests for the demo data: counts, re-running, valid references, variety, and
// the progress output in both of its forms.
package seed_test

import (
	"bytes"
	"context"
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
	res, err := seed.Run(ctx, st, seed.Config{Users: 7, Customers: 60, Interactions: 250, PasswordHash: "x", BatchSize: 40, Progress: &progress})
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
	if !strings.Contains(progress.String(), "seeded 317/317 records (100%)") {
		t.Errorf("progress output: %q", progress.String())
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
	if _, err := seed.Run(context.Background(), st, seed.Config{Users: 2, Customers: 10, PasswordHash: "x", BatchSize: 4, Progress: &out, Terminal: true}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "\r[") < 3 || !strings.Contains(s, "100% 12/12") || !strings.Contains(s, "records/s") || !strings.Contains(s, "ETA") {
		t.Errorf("terminal progress: %q", s)
	}
}

func TestSeedRefusesImpossibleCounts(t *testing.T) {
	st := openStore(t)
	for _, cfg := range []seed.Config{{Customers: 1}, {Users: 1, Interactions: 1}} {
		if _, err := seed.Run(context.Background(), st, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
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
