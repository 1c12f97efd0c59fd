// Tests of the interactions collection: create/get/update/delete, the
// references to a customer and a user (missing, being deleted; nothing left
// inserted), conditional writes on revision (also under concurrency), every
// list filter, and interactions as the original CRM stored them.
package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestCreateAndGetInteraction(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})

	// A scheduled time in another zone, with sub-millisecond digits.
	zone := time.FixedZone("UTC+2", 2*3600)
	scheduled := time.Date(2025, 5, 6, 14, 30, 0, 123_456_789, zone)
	before := time.Now().Truncate(time.Millisecond)
	it := &Interaction{UserID: u.ID, CustomerID: c.ID, Type: "Meeting", Status: "Open", Description: "kick-off", ScheduledAt: &scheduled}
	if err := s.CreateInteraction(ctx, it); err != nil {
		t.Fatalf("CreateInteraction: %v", err)
	}
	if it.ID.IsZero() || it.Revision != 1 || it.CreatedAt.Before(before) || !it.UpdatedAt.Equal(it.CreatedAt) {
		t.Errorf("CreateInteraction filled id %v, revision %d, created %v, updated %v", it.ID, it.Revision, it.CreatedAt, it.UpdatedAt)
	}
	wantScheduled := time.Date(2025, 5, 6, 12, 30, 0, 123_000_000, time.UTC)
	if it.ScheduledAt == nil || !it.ScheduledAt.Equal(wantScheduled) || it.ScheduledAt.Location() != time.UTC {
		t.Errorf("CreateInteraction left scheduled_at %v, want it as stored: %v", it.ScheduledAt, wantScheduled)
	}
	got, err := s.GetInteraction(ctx, it.ID)
	if err != nil {
		t.Fatalf("GetInteraction: %v", err)
	}
	if got.UserID != u.ID || got.CustomerID != c.ID || got.Type != "Meeting" || got.Status != "Open" || got.Description != "kick-off" ||
		got.Revision != 1 || !got.CreatedAt.Equal(it.CreatedAt) || got.ScheduledAt == nil || !got.ScheduledAt.Equal(wantScheduled) ||
		got.ScheduledAt.Location() != time.UTC {
		t.Errorf("GetInteraction = %+v (scheduled %v), want scheduled %v in UTC", got, got.ScheduledAt, wantScheduled)
	}

	// Go's zero time is stored like any other: the driver's omitempty would
	// drop a pointer to it as if it were nil.
	var zero time.Time
	atZero := &Interaction{UserID: u.ID, CustomerID: c.ID, Type: "Call", Status: "Open", ScheduledAt: &zero}
	if err := s.CreateInteraction(ctx, atZero); err != nil {
		t.Fatalf("CreateInteraction at the zero time: %v", err)
	}
	got, err = s.GetInteraction(ctx, atZero.ID)
	if err != nil || got.ScheduledAt == nil || !got.ScheduledAt.IsZero() {
		t.Errorf("interaction scheduled at 0001-01-01T00:00:00Z read back as %+v, %v", got, err)
	}
	if n, err := s.ImportInteractions(ctx, []Interaction{{ID: bson.NewObjectID(), UserID: u.ID, CustomerID: c.ID, Type: "Call", Status: "Open",
		ScheduledAt: &zero, CreatedAt: before, UpdatedAt: before, Revision: 1}}); err != nil || n != 1 {
		t.Fatalf("ImportInteractions at the zero time: %d, %v", n, err)
	}
	page, err := s.ListInteractions(ctx, InteractionFilter{ScheduledTo: ptr(zero.Add(time.Millisecond))},
		ListOptions{Sort: Sort{Field: "scheduled_at"}, Limit: 10})
	if err != nil || len(page.Items) != 2 || page.Items[0].ScheduledAt == nil || !page.Items[0].ScheduledAt.IsZero() {
		t.Errorf("scheduled before 0001-01-01T00:00:00.001Z: %+v, %v; want the two at the zero time", page.Items, err)
	}

	bare := mustCreateInteraction(t, s, u.ID, c.ID, "Note", "Open", nil)
	got, err = s.GetInteraction(ctx, bare.ID)
	if err != nil || got.ScheduledAt != nil {
		t.Errorf("interaction without scheduled_at: %+v, %v", got, err)
	}
	if _, ok := rawDoc(t, s.interactions.Collection, bare.ID)["scheduled_at"]; ok {
		t.Error("an interaction without scheduled_at stored one")
	}
	if _, err := s.GetInteraction(ctx, bson.NewObjectID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetInteraction(unknown) = %v, want ErrNotFound", err)
	}
}

func TestCreateInteractionMissingReferences(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	deletingCustomer := mustCreateCustomer(t, s, &Customer{Name: "D", Email: "d@example.com"})
	rawSet(t, s.customers.Collection, deletingCustomer.ID, bson.D{{Key: "deleting_at", Value: time.Now()}})
	deletingUser := mustCreateUser(t, s, "DU", "du@example.com", RoleMember)
	rawSet(t, s.users.Collection, deletingUser.ID, bson.D{{Key: "deleting_at", Value: time.Now()}})

	tests := []struct {
		name           string
		customer, user bson.ObjectID
		wantField      string
	}{
		{"missing customer", bson.NewObjectID(), u.ID, "customer_id"},
		{"missing user", c.ID, bson.NewObjectID(), "user_id"},
		{"both missing", bson.NewObjectID(), bson.NewObjectID(), "customer_id"},
		{"customer being deleted", deletingCustomer.ID, u.ID, "customer_id"},
		{"user being deleted", c.ID, deletingUser.ID, "user_id"},
		{"customer id is a user id", u.ID, u.ID, "customer_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateInteraction(ctx, &Interaction{UserID: tc.user, CustomerID: tc.customer, Type: "Call", Status: "Open"})
			var me *MissingReferenceError
			if !errors.As(err, &me) || me.Field != tc.wantField || !errors.Is(err, ErrMissingReference) {
				t.Errorf("CreateInteraction = %v, want *MissingReferenceError for %s", err, tc.wantField)
			}
			if n := countDocs(t, s.interactions.Collection, nil); n != 0 {
				t.Errorf("%d interactions stored after a refused create", n)
			}
		})
	}
}

func TestUpdateInteraction(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	u2 := mustCreateUser(t, s, "U2", "u2@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	c2 := mustCreateCustomer(t, s, &Customer{Name: "C2", Email: "c2@example.com"})
	sched := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	newSched := time.Date(2025, 2, 3, 4, 5, 6, 0, time.FixedZone("x", -3600))

	tests := []struct {
		name   string
		change InteractionChanges
		check  func(t *testing.T, it *Interaction, raw bson.M)
	}{
		{"type and status", InteractionChanges{Type: ptr("Ticket"), Status: ptr("Resolved")}, func(t *testing.T, it *Interaction, raw bson.M) {
			if it.Type != "Ticket" || it.Status != "Resolved" || it.Description != "desc" {
				t.Errorf("got %+v", it)
			}
		}},
		{"description", InteractionChanges{Description: ptr("new desc")}, func(t *testing.T, it *Interaction, raw bson.M) {
			if it.Description != "new desc" {
				t.Errorf("description %q", it.Description)
			}
		}},
		{"clear description", InteractionChanges{Description: ptr("")}, func(t *testing.T, it *Interaction, raw bson.M) {
			if _, ok := raw["description"]; ok || it.Description != "" {
				t.Errorf("description still %q / %v", it.Description, raw["description"])
			}
		}},
		{"reschedule", InteractionChanges{ScheduledAt: ptr(&newSched)}, func(t *testing.T, it *Interaction, raw bson.M) {
			if it.ScheduledAt == nil || !it.ScheduledAt.Equal(newSched) || it.ScheduledAt.Location() != time.UTC {
				t.Errorf("scheduled_at %v, want %v in UTC", it.ScheduledAt, newSched)
			}
		}},
		{"unschedule", InteractionChanges{ScheduledAt: new(*time.Time)}, func(t *testing.T, it *Interaction, raw bson.M) {
			if _, ok := raw["scheduled_at"]; ok || it.ScheduledAt != nil {
				t.Errorf("scheduled_at still %v / %v", it.ScheduledAt, raw["scheduled_at"])
			}
		}},
		// Go's zero time, 0001-01-01T00:00:00Z, is a time the API accepts,
		// and once meant "unschedule".
		{"reschedule to Go's zero time", InteractionChanges{ScheduledAt: ptr(&time.Time{})}, func(t *testing.T, it *Interaction, raw bson.M) {
			if it.ScheduledAt == nil || !it.ScheduledAt.IsZero() || it.ScheduledAt.Location() != time.UTC {
				t.Errorf("scheduled_at %v, want 0001-01-01T00:00:00Z", it.ScheduledAt)
			}
			if _, ok := raw["scheduled_at"].(bson.DateTime); !ok {
				t.Errorf("stored scheduled_at %#v, want a date", raw["scheduled_at"])
			}
		}},
		{"move to another customer and user", InteractionChanges{CustomerID: &c2.ID, UserID: &u2.ID}, func(t *testing.T, it *Interaction, raw bson.M) {
			if it.CustomerID != c2.ID || it.UserID != u2.ID {
				t.Errorf("customer %v user %v, want %v %v", it.CustomerID, it.UserID, c2.ID, u2.ID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it := &Interaction{UserID: u.ID, CustomerID: c.ID, Type: "Call", Status: "Open", Description: "desc", ScheduledAt: &sched}
			if err := s.CreateInteraction(ctx, it); err != nil {
				t.Fatal(err)
			}
			pause()
			got, err := s.UpdateInteraction(ctx, it.ID, 1, tc.change)
			if err != nil {
				t.Fatalf("UpdateInteraction: %v", err)
			}
			if got.Revision != 2 || !got.CreatedAt.Equal(it.CreatedAt) || !got.UpdatedAt.After(it.UpdatedAt) {
				t.Errorf("revision %d (want 2), created %v→%v (want unchanged), updated %v→%v (want later)",
					got.Revision, it.CreatedAt, got.CreatedAt, it.UpdatedAt, got.UpdatedAt)
			}
			tc.check(t, got, rawDoc(t, s.interactions.Collection, it.ID))
			again, err := s.GetInteraction(ctx, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", got) {
				t.Errorf("GetInteraction after update:\n %+v\nUpdateInteraction returned\n %+v", again, got)
			}
		})
	}

	// Moving to a customer or user that does not exist is refused; nothing changes.
	it := mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)
	for _, tc := range []struct {
		change    InteractionChanges
		wantField string
	}{
		{InteractionChanges{CustomerID: ptr(bson.NewObjectID()), Status: ptr("Resolved")}, "customer_id"},
		{InteractionChanges{UserID: ptr(bson.NewObjectID()), Status: ptr("Resolved")}, "user_id"},
	} {
		_, err := s.UpdateInteraction(ctx, it.ID, 1, tc.change)
		var me *MissingReferenceError
		if !errors.As(err, &me) || me.Field != tc.wantField || !errors.Is(err, ErrMissingReference) {
			t.Errorf("UpdateInteraction to a missing %s = %v, want *MissingReferenceError", tc.wantField, err)
		}
	}
	got, err := s.GetInteraction(ctx, it.ID)
	if err != nil || got.CustomerID != c.ID || got.UserID != u.ID || got.Status != "Open" || got.Revision != 1 {
		t.Errorf("after refused updates: %+v, %v", got, err)
	}
}

func TestInteractionConditionalWrites(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	it := mustCreateInteraction(t, s, u.ID, c.ID, "Task", "Open", nil)
	for want := int64(2); want <= 3; want++ {
		got, err := s.UpdateInteraction(ctx, it.ID, want-1, InteractionChanges{Description: ptr(fmt.Sprint("d", want))})
		if err != nil || got.Revision != want {
			t.Fatalf("update at revision %d: %+v, %v", want-1, got, err)
		}
	}
	for _, rev := range []int64{0, 2, 4} {
		if _, err := s.UpdateInteraction(ctx, it.ID, rev, InteractionChanges{Status: ptr("Cancelled")}); !errors.Is(err, ErrStale) {
			t.Errorf("UpdateInteraction at revision %d (current 3) = %v, want ErrStale", rev, err)
		}
		if _, err := s.UpdateInteraction(ctx, it.ID, rev, InteractionChanges{CustomerID: &c.ID}); !errors.Is(err, ErrStale) {
			t.Errorf("UpdateInteraction with a reference at revision %d (current 3) = %v, want ErrStale", rev, err)
		}
		if err := s.DeleteInteraction(ctx, it.ID, rev); !errors.Is(err, ErrStale) {
			t.Errorf("DeleteInteraction at revision %d (current 3) = %v, want ErrStale", rev, err)
		}
	}
	unknown := bson.NewObjectID()
	if _, err := s.UpdateInteraction(ctx, unknown, 1, InteractionChanges{Status: ptr("Open")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateInteraction(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateInteraction(ctx, unknown, 1, InteractionChanges{CustomerID: &c.ID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateInteraction(unknown, with a reference) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteInteraction(ctx, unknown, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteInteraction(unknown) = %v, want ErrNotFound", err)
	}
	if got, err := s.GetInteraction(ctx, it.ID); err != nil || got.Status != "Open" || got.Description != "d3" || got.Revision != 3 {
		t.Fatalf("after stale writes: %+v, %v", got, err)
	}
	if err := s.DeleteInteraction(ctx, it.ID, 3); err != nil {
		t.Fatalf("DeleteInteraction: %v", err)
	}
	if _, err := s.GetInteraction(ctx, it.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetInteraction after delete = %v", err)
	}
	if err := s.DeleteInteraction(ctx, it.ID, 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteInteraction = %v, want ErrNotFound", err)
	}
	// With its only interaction gone, the customer can be deleted without cascade.
	if err := s.DeleteCustomer(ctx, c.ID, 1, false, nil); err != nil {
		t.Errorf("DeleteCustomer after its interaction was deleted: %v", err)
	}
}

func TestUpdateInteractionRace(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	it := mustCreateInteraction(t, s, u.ID, c.ID, "Task", "Open", nil)
	const n = 16
	errs := runConcurrently(n, func(i int) error {
		ch := InteractionChanges{Description: ptr(fmt.Sprintf("winner %d", i))}
		if i%2 == 0 {
			ch.CustomerID = &c.ID // half of them go through the reference-checking path
		}
		_, err := s.UpdateInteraction(t.Context(), it.ID, 1, ch)
		return err
	})
	ok, stale, other := tallyErrors(errs, ErrStale)
	if ok != 1 || stale != n-1 || len(other) != 0 {
		t.Fatalf("%d succeeded, %d stale, others %v; want 1 and %d", ok, stale, other, n-1)
	}
	got, err := s.GetInteraction(t.Context(), it.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err == nil && (got.Description != fmt.Sprintf("winner %d", i) || got.Revision != 2) {
			t.Errorf("stored %q at revision %d, want winner %d's change at revision 2", got.Description, got.Revision, i)
		}
	}
}

func TestListInteractionsFilters(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u1 := mustCreateUser(t, s, "U1", "u1@example.com", RoleMember)
	u2 := mustCreateUser(t, s, "U2", "u2@example.com", RoleMember)
	c1 := mustCreateCustomer(t, s, &Customer{Name: "C1", Email: "c1@example.com"})
	c2 := mustCreateCustomer(t, s, &Customer{Name: "C2", Email: "c2@example.com"})
	at := func(h int) *time.Time { v := time.Date(2025, 3, 1, h, 0, 0, 0, time.UTC); return &v }

	names := map[bson.ObjectID]string{}
	add := func(name string, u, c bson.ObjectID, typ, status string, sched *time.Time) {
		t.Helper()
		it := &Interaction{UserID: u, CustomerID: c, Type: typ, Status: status, ScheduledAt: sched, Description: name}
		if err := s.CreateInteraction(ctx, it); err != nil {
			t.Fatal(err)
		}
		names[it.ID] = name
	}
	add("a", u1.ID, c1.ID, "Meeting", "Open", at(9))
	add("b", u1.ID, c2.ID, "Call", "Resolved", at(10))
	add("c", u2.ID, c1.ID, "Meeting", "InProgress", at(11))
	add("d", u2.ID, c2.ID, "Ticket", "Open", nil)
	add("e", u1.ID, c1.ID, "Note", "Cancelled", nil)
	add("f", u2.ID, c1.ID, "Task", "Open", at(12))
	// a, b and c were created on the 1st, d, e and f on the 3rd.
	day := func(d int) *time.Time { v := time.Date(2025, 3, d, 0, 0, 0, 0, time.UTC); return &v }
	for id, name := range names {
		created := day(3)
		if name < "d" {
			created = day(1)
		}
		rawSet(t, s.interactions.Collection, id, bson.D{{Key: "created_at", Value: *created}})
	}

	tests := []struct {
		name   string
		filter InteractionFilter
		want   string
	}{
		{"all", InteractionFilter{}, "abcdef"},
		{"customer", InteractionFilter{CustomerID: &c1.ID}, "acef"},
		{"user", InteractionFilter{UserIDs: []bson.ObjectID{u2.ID}}, "cdf"},
		{"customer and user", InteractionFilter{CustomerID: &c1.ID, UserIDs: []bson.ObjectID{u1.ID}}, "ae"},
		{"unknown customer", InteractionFilter{CustomerID: ptr(bson.NewObjectID())}, ""},
		{"type", InteractionFilter{Types: []string{"Meeting"}}, "ac"},
		{"status", InteractionFilter{Statuses: []string{"Open"}}, "adf"},
		{"type and status", InteractionFilter{Types: []string{"Meeting"}, Statuses: []string{"Open"}}, "a"},
		{"any of two types", InteractionFilter{Types: []string{"Meeting", "Ticket"}}, "acd"},
		{"any of two statuses", InteractionFilter{Statuses: []string{"InProgress", "Cancelled"}}, "ce"},
		{"any of two users, and a status", InteractionFilter{UserIDs: []bson.ObjectID{u1.ID, u2.ID}, Statuses: []string{"Open"}}, "adf"},
		{"scheduled from (inclusive)", InteractionFilter{ScheduledFrom: at(11)}, "cf"},
		{"scheduled to (exclusive)", InteractionFilter{ScheduledTo: at(10)}, "a"},
		{"scheduled range", InteractionFilter{ScheduledFrom: at(10), ScheduledTo: at(12)}, "bc"},
		{"scheduled range excludes unscheduled", InteractionFilter{ScheduledFrom: at(0), ScheduledTo: at(23)}, "abcf"},
		{"scheduled from, sub-millisecond", InteractionFilter{ScheduledFrom: ptr(at(11).Add(time.Microsecond))}, "f"},
		{"scheduled to, sub-millisecond", InteractionFilter{ScheduledTo: ptr(at(10).Add(time.Microsecond))}, "ab"},
		{"customer and scheduled", InteractionFilter{CustomerID: &c1.ID, ScheduledFrom: at(10)}, "cf"},
		{"search the description, any case", InteractionFilter{Search: "E"}, "e"},
		{"search is literal", InteractionFilter{Search: "."}, ""},
		{"created after (inclusive)", InteractionFilter{CreatedAfter: day(3)}, "def"},
		{"created before (exclusive)", InteractionFilter{CreatedBefore: day(3)}, "abc"},
		{"created, and a search", InteractionFilter{CreatedAfter: day(2), Search: "f"}, "f"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListInteractions(ctx, tc.filter, ListOptions{Sort: Sort{Field: "created_at"}, Limit: 50, Count: true})
			if err != nil {
				t.Fatalf("ListInteractions: %v", err)
			}
			var got strings.Builder
			for _, it := range page.Items {
				got.WriteString(names[it.ID])
			}
			if got.String() != tc.want {
				t.Errorf("got %q, want %q (in creation order)", got.String(), tc.want)
			}
			if page.Total == nil || *page.Total != int64(len(tc.want)) {
				t.Errorf("Total = %v, want %d", page.Total, len(tc.want))
			}
		})
	}
}

// Interactions as the original CRM stored them: no timestamps or revision, and
// type/status spelt its way.
func TestLegacyInteractions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
	created := time.Date(2021, 9, 9, 9, 9, 9, 0, time.UTC)
	sched := time.Date(2021, 10, 1, 10, 0, 0, 0, time.UTC)

	tests := []struct {
		name               string
		doc                bson.D
		wantType, wantStat string
		wantSched          *time.Time
	}{
		{"lower case, scheduled", bson.D{{Key: "type", Value: "meeting"}, {Key: "status", Value: "open"}, {Key: "scheduled_at", Value: sched}}, "Meeting", "Open", &sched},
		{"snake case status", bson.D{{Key: "type", Value: "Ticket"}, {Key: "status", Value: "in_progress"}}, "Ticket", "InProgress", nil},
		{"spaced status", bson.D{{Key: "type", Value: "CALL"}, {Key: "status", Value: "In Progress"}}, "Call", "InProgress", nil},
		{"unknown type and status", bson.D{{Key: "type", Value: "Visit"}, {Key: "status", Value: "done"}}, "Note", "Open", nil},
		{"no type or status", bson.D{{Key: "notes", Value: "legacy note"}}, "Note", "Open", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := bson.NewObjectIDFromTimestamp(created.Add(time.Duration(i) * time.Second))
			rawInsert(t, s.interactions.Collection, append(bson.D{{Key: "_id", Value: id}, {Key: "user_id", Value: u.ID}, {Key: "customer_id", Value: c.ID},
				{Key: "description", Value: "legacy " + tc.name}, {Key: "contact_info", Value: "x"}}, tc.doc...))
			got, err := s.GetInteraction(ctx, id)
			if err != nil {
				t.Fatalf("GetInteraction(legacy): %v", err)
			}
			wantCreated := created.Add(time.Duration(i) * time.Second)
			if got.Type != tc.wantType || got.Status != tc.wantStat || got.Revision != 0 || got.UserID != u.ID || got.CustomerID != c.ID ||
				!got.CreatedAt.Equal(wantCreated) || !got.UpdatedAt.Equal(wantCreated) {
				t.Errorf("legacy interaction = %+v; want type %q, status %q, revision 0, created/updated %v", got, tc.wantType, tc.wantStat, wantCreated)
			}
			if (got.ScheduledAt == nil) != (tc.wantSched == nil) || (got.ScheduledAt != nil && !got.ScheduledAt.Equal(*tc.wantSched)) {
				t.Errorf("scheduled_at %v, want %v", got.ScheduledAt, tc.wantSched)
			}
		})
	}

	page, err := s.ListInteractions(ctx, InteractionFilter{CustomerID: &c.ID}, ListOptions{Sort: Sort{Field: "scheduled_at", Desc: true}, Limit: 50, Count: true})
	if err != nil || len(page.Items) != len(tests) || *page.Total != int64(len(tests)) {
		t.Fatalf("ListInteractions of legacy interactions: %d items, %v", len(page.Items), err)
	}

	id := page.Items[0].ID // the scheduled one sorts first, descending
	if page.Items[0].ScheduledAt == nil {
		t.Fatalf("descending by scheduled_at, the first is unscheduled: %+v", page.Items[0])
	}
	if _, err := s.UpdateInteraction(ctx, id, 1, InteractionChanges{Status: ptr("Resolved")}); !errors.Is(err, ErrStale) {
		t.Errorf("UpdateInteraction(legacy) at revision 1 = %v, want ErrStale", err)
	}
	upd, err := s.UpdateInteraction(ctx, id, 0, InteractionChanges{Status: ptr("Resolved"), UserID: &u.ID})
	if err != nil {
		t.Fatalf("UpdateInteraction(legacy) at revision 0: %v", err)
	}
	if upd.Revision != 1 || upd.Status != "Resolved" || upd.Type != "Meeting" || !upd.CreatedAt.Equal(created) {
		t.Errorf("updated legacy interaction = %+v", upd)
	}
	if err := s.DeleteInteraction(ctx, page.Items[1].ID, 0); err != nil {
		t.Errorf("DeleteInteraction(legacy) at revision 0: %v", err)
	}
	if err := s.DeleteInteraction(ctx, id, 1); err != nil {
		t.Errorf("DeleteInteraction(updated legacy) at revision 1: %v", err)
	}
	if n := countDocs(t, s.interactions.Collection, nil); n != int64(len(tests)-2) {
		t.Errorf("%d interactions left, want %d", n, len(tests)-2)
	}
}

// A referenced record that starts being deleted between the store's check and
// its insert: the insert waits for the delete's outcome. When the delete goes
// through, the insert is undone and the caller told which reference failed;
// when the delete is refused (other records still refer to the record), the
// insert stands — before, it was refused although the record stayed.
func TestCreateInteractionRacingDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		target    func(u *User, c *Customer) (string, bson.ObjectID)
		wantField string
	}{
		{"customer", func(u *User, c *Customer) (string, bson.ObjectID) { return customersCollection, c.ID }, "customer_id"},
		{"user", func(u *User, c *Customer) (string, bson.ObjectID) { return usersCollection, u.ID }, "user_id"},
	}
	for _, tc := range tests {
		for _, deleted := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, deleted %v", tc.name, deleted), func(t *testing.T) {
				t.Parallel()
				s, hook := openHookedStore(t)
				ctx := t.Context()
				u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
				c := mustCreateCustomer(t, s, &Customer{Name: "C", Email: "c@example.com"})
				collName, id := tc.target(u, c)
				mark, decided := deleteDecidedSoon(t, s.db.Collection(collName), id, deleted)
				hook.Store(onceBefore("insert", interactionsCollection, mark))
				it := &Interaction{UserID: u.ID, CustomerID: c.ID, Type: "Call", Status: "Open"}
				err := s.CreateInteraction(ctx, it)
				hook.Store(nil)
				decided()
				want := int64(1)
				if deleted {
					var me *MissingReferenceError
					if !errors.As(err, &me) || me.Field != tc.wantField {
						t.Fatalf("CreateInteraction while the %s is deleted = %v, want *MissingReferenceError for %s", tc.name, err, tc.wantField)
					}
					want = 0
					// Listed for a moment, as sync jobs may have seen it: it leaves a trace.
					if traced := tracedIDs(t, s); !slices.Equal(traced, []bson.ObjectID{it.ID}) {
						t.Errorf("traces of %v; want the undone insert's, %v", traced, it.ID)
					}
				} else if err != nil {
					t.Fatalf("CreateInteraction while a delete of the %s is refused: %v", tc.name, err)
				}
				if n := countDocs(t, s.interactions.Collection, nil); n != want {
					t.Errorf("%d interactions, want %d", n, want)
				}
			})
		}
	}
}

// The same race on an update that moves an interaction to another customer:
// the caller gets the error, and the interaction must be left as it was — not
// only its customer_id but every field of the refused change.
func TestUpdateInteractionRacingDelete(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c1 := mustCreateCustomer(t, s, &Customer{Name: "C1", Email: "c1@example.com"})
	c2 := mustCreateCustomer(t, s, &Customer{Name: "C2", Email: "c2@example.com"})
	it := &Interaction{UserID: u.ID, CustomerID: c1.ID, Type: "Call", Status: "Open", Description: "original"}
	if err := s.CreateInteraction(ctx, it); err != nil {
		t.Fatal(err)
	}

	mark, deleted := deleteDecidedSoon(t, s.customers.Collection, c2.ID, true)
	hook.Store(onceBefore("findAndModify", interactionsCollection, mark))
	_, err := s.UpdateInteraction(ctx, it.ID, 1, InteractionChanges{CustomerID: &c2.ID, Status: ptr("Resolved"), Description: ptr("changed")})
	hook.Store(nil)
	deleted()
	var me *MissingReferenceError
	if !errors.As(err, &me) || me.Field != "customer_id" {
		t.Fatalf("UpdateInteraction racing the new customer's delete = %v, want *MissingReferenceError for customer_id", err)
	}
	got, err := s.GetInteraction(ctx, it.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.CustomerID != c1.ID {
		t.Errorf("customer_id %v after the refused update, want the original %v", got.CustomerID, c1.ID)
	}
	if got.Status != "Open" || got.Description != "original" {
		t.Errorf("after the refused update: status %q, description %q; want the original Open/original (a refused write changes nothing)", got.Status, got.Description)
	}
}
