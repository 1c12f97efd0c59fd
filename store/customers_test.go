// Tests of the customers collection: create/get/update/delete, the unique
// email, the owner reference (missing, being deleted), deletes refused while
// interactions refer to the customer and the cascade, conditional writes on
// revision (also under concurrency), every list filter, and customers as the
// original CRM stored them.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
)

func TestCreateAndGetCustomer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	owner := mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)

	before := time.Now().Truncate(time.Millisecond)
	c := &Customer{Name: "Initech", Email: "contact@initech.test", Phone: "+1 555 0199", Company: "Initech LLC",
		Status: StatusInactive, Notes: "TPS reports", Tags: []string{"vip", "q3"}, OwnerID: &owner.ID}
	if err := s.CreateCustomer(ctx, c); err != nil {
		t.Fatalf("CreateCustomer: %v", err)
	}
	after := time.Now()
	if c.ID.IsZero() || c.Revision != 1 || c.CreatedAt.Before(before) || c.CreatedAt.After(after) || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("CreateCustomer filled id %v, revision %d, created %v, updated %v", c.ID, c.Revision, c.CreatedAt, c.UpdatedAt)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetCustomer: %v", err)
	}
	if got.Name != "Initech" || got.Email != "contact@initech.test" || got.Phone != "+1 555 0199" || got.Company != "Initech LLC" ||
		got.Status != StatusInactive || got.Notes != "TPS reports" || strings.Join(got.Tags, ",") != "vip,q3" ||
		got.OwnerID == nil || *got.OwnerID != owner.ID || got.Revision != 1 || got.DeletingAt != nil ||
		!got.CreatedAt.Equal(c.CreatedAt) || !got.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("GetCustomer = %+v", got)
	}

	// A customer with only the required fields: no owner, tags as an empty list.
	bare := mustCreateCustomer(t, s, &Customer{Name: "Bare", Email: "bare@example.com"})
	got, err = s.GetCustomer(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OwnerID != nil || got.Tags == nil || len(got.Tags) != 0 || got.Phone != "" || got.Status != StatusActive {
		t.Errorf("bare customer = %+v; want no owner, empty non-nil tags", got)
	}
	raw := rawDoc(t, s.customers.Collection, bare.ID)
	for _, f := range []string{"owner_id", "tags", "phone", "company", "notes", "deleting_at"} {
		if _, ok := raw[f]; ok {
			t.Errorf("bare customer stored an empty %q: %v", f, raw[f])
		}
	}

	if _, err := s.GetCustomer(ctx, bson.NewObjectID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCustomer(unknown) = %v, want ErrNotFound", err)
	}
}

func TestCustomerEmailIsUnique(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	mustCreateCustomer(t, s, &Customer{Name: "One", Email: "taken@example.com"})
	err := s.CreateCustomer(ctx, &Customer{Name: "Two", Email: "taken@example.com", Status: StatusActive})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second CreateCustomer with the same email = %v, want ErrDuplicate", err)
	}
	if n := countDocs(t, s.customers.Collection, nil); n != 1 {
		t.Errorf("%d customers, want 1", n)
	}
	other := mustCreateCustomer(t, s, &Customer{Name: "Other", Email: "other@example.com"})
	if _, err := s.UpdateCustomer(ctx, other.ID, 1, CustomerChanges{Email: ptr("taken@example.com")}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("UpdateCustomer onto a taken email = %v, want ErrDuplicate", err)
	}
	got, _ := s.GetCustomer(ctx, other.ID)
	if got == nil || got.Email != "other@example.com" || got.Revision != 1 {
		t.Errorf("after the refused update: %+v", got)
	}
	// A user and a customer may share an email: the indexes are per collection.
	mustCreateUser(t, s, "Same", "taken@example.com", RoleMember)
}

func TestCreateCustomerMissingOwner(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	being := mustCreateUser(t, s, "Being Deleted", "being@example.com", RoleMember)
	rawSet(t, s.users.Collection, being.ID, bson.D{{Key: "deleting_at", Value: time.Now()}})
	stale := mustCreateUser(t, s, "Stale Mark", "stale@example.com", RoleMember)
	rawSet(t, s.users.Collection, stale.ID, bson.D{{Key: "deleting_at", Value: time.Now().Add(-2 * time.Minute)}})

	tests := []struct {
		name    string
		owner   bson.ObjectID
		wantErr bool
	}{
		{"unknown owner", bson.NewObjectID(), true},
		{"owner being deleted", being.ID, true},
		{"owner with an abandoned deletion mark", stale.ID, false},
	}
	for i, tc := range tests {
		email := fmt.Sprintf("c%d@example.com", i)
		err := s.CreateCustomer(ctx, &Customer{Name: tc.name, Email: email, Status: StatusActive, OwnerID: &tc.owner})
		n := countDocs(t, s.customers.Collection, bson.D{{Key: "email", Value: email}})
		if !tc.wantErr {
			if err != nil || n != 1 {
				t.Errorf("%s: CreateCustomer = %v, %d stored; want success", tc.name, err, n)
			}
			continue
		}
		var me *MissingReferenceError
		if !errors.As(err, &me) || me.Field != "owner_id" || !errors.Is(err, ErrMissingReference) {
			t.Errorf("%s: CreateCustomer = %v, want *MissingReferenceError for owner_id", tc.name, err)
		}
		if n != 0 {
			t.Errorf("%s: the refused customer was stored", tc.name)
		}
	}
}

func TestUpdateCustomer(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	owner := mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)
	newOwner := mustCreateUser(t, s, "New Owner", "new-owner@example.com", RoleMember)

	tests := []struct {
		name   string
		change CustomerChanges
		check  func(t *testing.T, c *Customer, raw bson.M)
	}{
		{"name", CustomerChanges{Name: ptr("Renamed")}, func(t *testing.T, c *Customer, raw bson.M) {
			if c.Name != "Renamed" || c.Email != "cust@example.com" || c.Phone != "555" {
				t.Errorf("got %+v", c)
			}
		}},
		{"email", CustomerChanges{Email: ptr("new@example.com")}, func(t *testing.T, c *Customer, raw bson.M) {
			if c.Email != "new@example.com" {
				t.Errorf("email %q", c.Email)
			}
		}},
		{"clear optional strings", CustomerChanges{Phone: ptr(""), Company: ptr(""), Notes: ptr("")}, func(t *testing.T, c *Customer, raw bson.M) {
			for _, f := range []string{"phone", "company", "notes"} {
				if _, ok := raw[f]; ok {
					t.Errorf("%s still stored: %v", f, raw[f])
				}
			}
			if c.Phone != "" || c.Company != "" || c.Notes != "" {
				t.Errorf("got %+v", c)
			}
		}},
		{"set optional strings", CustomerChanges{Phone: ptr("999"), Company: ptr("NewCo"), Notes: ptr("n2"), Status: ptr(StatusInactive)}, func(t *testing.T, c *Customer, raw bson.M) {
			if c.Phone != "999" || c.Company != "NewCo" || c.Notes != "n2" || c.Status != StatusInactive {
				t.Errorf("got %+v", c)
			}
		}},
		{"replace tags", CustomerChanges{Tags: &[]string{"x", "y", "z"}}, func(t *testing.T, c *Customer, raw bson.M) {
			if strings.Join(c.Tags, ",") != "x,y,z" {
				t.Errorf("tags %q", c.Tags)
			}
		}},
		{"clear tags", CustomerChanges{Tags: &[]string{}}, func(t *testing.T, c *Customer, raw bson.M) {
			if _, ok := raw["tags"]; ok || c.Tags == nil || len(c.Tags) != 0 {
				t.Errorf("tags %q, stored %v", c.Tags, raw["tags"])
			}
		}},
		{"owner", CustomerChanges{OwnerID: &newOwner.ID}, func(t *testing.T, c *Customer, raw bson.M) {
			if c.OwnerID == nil || *c.OwnerID != newOwner.ID {
				t.Errorf("owner %v, want %v", c.OwnerID, newOwner.ID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each subtest has its own customer, removed at its end.
			c := mustCreateCustomer(t, s, &Customer{Name: "Cust", Email: "cust@example.com", Phone: "555", Company: "OldCo",
				Notes: "n1", Tags: []string{"a"}, OwnerID: &owner.ID})
			defer s.customers.DeleteOne(ctx, bson.D{{Key: "_id", Value: c.ID}})
			pause()
			got, err := s.UpdateCustomer(ctx, c.ID, 1, tc.change)
			if err != nil {
				t.Fatalf("UpdateCustomer: %v", err)
			}
			if got.Revision != 2 || !got.CreatedAt.Equal(c.CreatedAt) || !got.UpdatedAt.After(c.UpdatedAt) {
				t.Errorf("revision %d (want 2), created %v→%v (want unchanged), updated %v→%v (want later)",
					got.Revision, c.CreatedAt, got.CreatedAt, c.UpdatedAt, got.UpdatedAt)
			}
			tc.check(t, got, rawDoc(t, s.customers.Collection, c.ID))
			again, err := s.GetCustomer(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", got) {
				t.Errorf("GetCustomer after update:\n %+v\nUpdateCustomer returned\n %+v", again, got)
			}
		})
	}

	// An owner that does not exist is refused, and nothing changes.
	c := mustCreateCustomer(t, s, &Customer{Name: "Keep", Email: "keep@example.com", OwnerID: &owner.ID})
	_, err := s.UpdateCustomer(ctx, c.ID, 1, CustomerChanges{Name: ptr("Changed"), OwnerID: ptr(bson.NewObjectID())})
	var me *MissingReferenceError
	if !errors.As(err, &me) || me.Field != "owner_id" || !errors.Is(err, ErrMissingReference) {
		t.Fatalf("UpdateCustomer to a missing owner = %v, want *MissingReferenceError for owner_id", err)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil || got.Name != "Keep" || got.OwnerID == nil || *got.OwnerID != owner.ID || got.Revision != 1 {
		t.Errorf("after the refused update: %+v, %v", got, err)
	}
}

func TestCustomerConditionalWrites(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	c := mustCreateCustomer(t, s, &Customer{Name: "Rev", Email: "rev@example.com"})
	for want := int64(2); want <= 3; want++ {
		got, err := s.UpdateCustomer(ctx, c.ID, want-1, CustomerChanges{Notes: ptr(fmt.Sprint("n", want))})
		if err != nil || got.Revision != want {
			t.Fatalf("update at revision %d: %+v, %v", want-1, got, err)
		}
	}
	for _, rev := range []int64{0, 1, 2, 4} {
		if _, err := s.UpdateCustomer(ctx, c.ID, rev, CustomerChanges{Name: ptr("stale")}); !errors.Is(err, ErrStale) {
			t.Errorf("UpdateCustomer at revision %d (current 3) = %v, want ErrStale", rev, err)
		}
		for _, cascade := range []bool{false, true} {
			if err := s.DeleteCustomer(ctx, c.ID, rev, cascade, nil); !errors.Is(err, ErrStale) {
				t.Errorf("DeleteCustomer(cascade=%v) at revision %d (current 3) = %v, want ErrStale", cascade, rev, err)
			}
		}
	}
	if got, err := s.GetCustomer(ctx, c.ID); err != nil || got.Name != "Rev" || got.Revision != 3 || got.DeletingAt != nil {
		t.Fatalf("after stale writes: %+v, %v", got, err)
	}
	unknown := bson.NewObjectID()
	if _, err := s.UpdateCustomer(ctx, unknown, 1, CustomerChanges{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateCustomer(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCustomer(ctx, unknown, 1, false, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteCustomer(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteCustomer(ctx, c.ID, 3, false, nil); err != nil {
		t.Fatalf("DeleteCustomer: %v", err)
	}
	if _, err := s.GetCustomer(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetCustomer after delete = %v", err)
	}
	if err := s.DeleteCustomer(ctx, c.ID, 3, false, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("second DeleteCustomer = %v, want ErrNotFound", err)
	}
}

func TestUpdateCustomerRace(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	c := mustCreateCustomer(t, s, &Customer{Name: "Racer", Email: "racer@example.com"})
	const n = 16
	errs := runConcurrently(n, func(i int) error {
		_, err := s.UpdateCustomer(t.Context(), c.ID, 1, CustomerChanges{Name: ptr(fmt.Sprintf("winner %d", i)), Tags: &[]string{fmt.Sprint(i)}})
		return err
	})
	ok, stale, other := tallyErrors(errs, ErrStale)
	if ok != 1 || stale != n-1 || len(other) != 0 {
		t.Fatalf("%d succeeded, %d stale, others %v; want 1 and %d", ok, stale, other, n-1)
	}
	got, err := s.GetCustomer(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err == nil && (got.Name != fmt.Sprintf("winner %d", i) || strings.Join(got.Tags, ",") != fmt.Sprint(i) || got.Revision != 2) {
			t.Errorf("stored %+v, want the winner %d's change at revision 2", got, i)
		}
	}
}

func TestDeleteCustomerWithInteractions(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "Busy", Email: "busy@example.com"})
	other := mustCreateCustomer(t, s, &Customer{Name: "Other", Email: "other@example.com"})
	it1 := mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)
	it2 := mustCreateInteraction(t, s, u.ID, c.ID, "Email", "Resolved", nil)
	keep := mustCreateInteraction(t, s, u.ID, other.ID, "Note", "Open", nil)

	err := s.DeleteCustomer(ctx, c.ID, 1, false, nil)
	var re *ReferencedError
	if !errors.As(err, &re) || re.By != "interactions" || !errors.Is(err, ErrReferenced) {
		t.Fatalf("DeleteCustomer with interactions = %v, want *ReferencedError by interactions", err)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil || got.DeletingAt != nil || got.Revision != 1 {
		t.Fatalf("customer after the refused delete: %+v, %v; want it unmarked at revision 1", got, err)
	}
	// The deletion mark was taken back: new interactions may refer to it.
	it3 := mustCreateInteraction(t, s, u.ID, c.ID, "Meeting", "Open", nil)
	// And it can still be updated at its revision.
	if _, err := s.UpdateCustomer(ctx, c.ID, 1, CustomerChanges{Notes: ptr("still here")}); err != nil {
		t.Fatalf("UpdateCustomer after the refused delete: %v", err)
	}

	if err := s.DeleteCustomer(ctx, c.ID, 2, true, nil); err != nil {
		t.Fatalf("DeleteCustomer with cascade: %v", err)
	}
	if _, err := s.GetCustomer(ctx, c.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("customer after the cascade: %v", err)
	}
	for _, it := range []*Interaction{it1, it2, it3} {
		if _, err := s.GetInteraction(ctx, it.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("interaction %v of the deleted customer: %v, want ErrNotFound", it.ID, err)
		}
	}
	if n := countDocs(t, s.interactions.Collection, bson.D{{Key: "customer_id", Value: c.ID}}); n != 0 {
		t.Errorf("%d interactions still refer to the deleted customer", n)
	}
	if _, err := s.GetInteraction(ctx, keep.ID); err != nil {
		t.Errorf("another customer's interaction after the cascade: %v", err)
	}
	if _, err := s.GetCustomer(ctx, other.ID); err != nil {
		t.Errorf("the other customer after the cascade: %v", err)
	}
	// A customer without interactions needs no cascade.
	if err := s.DeleteCustomer(ctx, other.ID, 1, false, nil); !errors.As(err, &re) {
		t.Errorf("DeleteCustomer(other, which has one interaction) = %v, want *ReferencedError", err)
	}
	lone := mustCreateCustomer(t, s, &Customer{Name: "Lone", Email: "lone@example.com"})
	if err := s.DeleteCustomer(ctx, lone.ID, 1, false, nil); err != nil {
		t.Errorf("DeleteCustomer without interactions: %v", err)
	}
}

// A delete that fails part-way (here its context ends: the client went away,
// or the cascade ran past its deadline) leaves the customer in place and
// takes its deletion mark back: a mark left behind made every new reference
// to the customer wait the store's timeout and be refused as missing.
func TestDeleteCustomerFailingPartWayTakesItsMarkBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, command, coll string
	}{
		{"during the cascade", "delete", interactionsCollection},
		{"at the final delete", "delete", customersCollection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, hook := openHookedStore(t)
			u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
			c := mustCreateCustomer(t, s, &Customer{Name: "Busy", Email: "busy@example.com"})
			mustCreateInteraction(t, s, u.ID, c.ID, "Call", "Open", nil)

			ctx, cancel := context.WithCancel(t.Context())
			hook.Store(onceBefore(tc.command, tc.coll, cancel))
			err := s.DeleteCustomer(ctx, c.ID, 1, true, nil)
			hook.Store(nil)
			if err == nil {
				t.Fatal("DeleteCustomer succeeded although its context ended part-way")
			}
			got, err := s.GetCustomer(t.Context(), c.ID)
			if err != nil || got.DeletingAt != nil {
				t.Fatalf("customer after the failed delete: %+v, %v; want it there, without a deletion mark", got, err)
			}
			// A new interaction may refer to it at once.
			it := &Interaction{UserID: u.ID, CustomerID: c.ID, Type: "Note", Status: "Open"}
			if err := s.CreateInteraction(t.Context(), it); err != nil {
				t.Fatalf("CreateInteraction for the customer after the failed delete: %v", err)
			}
			// Sending the delete again finishes it.
			if err := s.DeleteCustomer(t.Context(), c.ID, 1, true, nil); err != nil {
				t.Fatalf("DeleteCustomer again: %v", err)
			}
			if n := countDocs(t, s.interactions.Collection, bson.D{{Key: "customer_id", Value: c.ID}}); n != 0 {
				t.Errorf("%d interactions still refer to the deleted customer", n)
			}
		})
	}
}

func TestListCustomersFilters(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	ann := mustCreateUser(t, s, "Ann", "ann@example.com", RoleMember)
	ben := mustCreateUser(t, s, "Ben", "ben@example.com", RoleMember)
	day := func(d int) time.Time { return time.Date(2024, 1, d, 12, 0, 0, 0, time.UTC) }

	type row struct {
		name, email, company, status string
		tags                         []string
		owner                        *bson.ObjectID
		created, updated             time.Time
	}
	rows := []row{
		{"Acme Corp", "hello@acme.test", "Acme", StatusActive, []string{"vip", "eu"}, &ann.ID, day(1), day(10)},
		{"Beta Ltd", "info@beta.test", "Beta", StatusInactive, []string{"eu"}, &ann.ID, day(2), day(2)},
		{"Gamma", "gamma@mail.test", "ACME", StatusActive, nil, &ben.ID, day(3), day(5)},
		{"Dot Star", "dot@star.test", "Dot.*Star", StatusActive, []string{"vip"}, nil, day(4), day(4)},
		{"Paren (Inc)", "paren@x.test", "", StatusInactive, []string{"us"}, &ben.ID, day(5), day(12)},
		{"Plus", "a+b@plus.test", "Plus", StatusActive, nil, nil, day(6), day(6)},
	}
	for _, r := range rows {
		c := &Customer{Name: r.name, Email: r.email, Company: r.company, Status: r.status, Tags: r.tags, OwnerID: r.owner}
		if r.name == "Plus" {
			c.Phone = "+1 555 0100"
		}
		mustCreateCustomer(t, s, c)
		rawSet(t, s.customers.Collection, c.ID, bson.D{{Key: "created_at", Value: r.created}, {Key: "updated_at", Value: r.updated}})
	}
	// A customer as the original CRM stored it: no status (so active).
	rawInsert(t, s.customers.Collection, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "Legacy"}, {Key: "email", Value: "legacy@old.test"},
		{Key: "company", Value: "Acme"}, {Key: "contact_info", Value: "call me"}, {Key: "created_at", Value: day(7)}, {Key: "updated_at", Value: day(7)}})
	if err := s.fillNameKeys(ctx); err != nil { // as the janitor does when the store opens
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		filter CustomerFilter
		want   []string
	}{
		{"all", CustomerFilter{}, []string{"Acme Corp", "Beta Ltd", "Dot Star", "Gamma", "Legacy", "Paren (Inc)", "Plus"}},
		{"active (includes no status)", CustomerFilter{Status: StatusActive}, []string{"Acme Corp", "Dot Star", "Gamma", "Legacy", "Plus"}},
		{"inactive", CustomerFilter{Status: StatusInactive}, []string{"Beta Ltd", "Paren (Inc)"}},
		{"company is exact", CustomerFilter{Company: "Acme"}, []string{"Acme Corp", "Legacy"}},
		{"company with metacharacters", CustomerFilter{Company: "Dot.*Star"}, []string{"Dot Star"}},
		{"tag", CustomerFilter{Tags: []string{"vip"}}, []string{"Acme Corp", "Dot Star"}},
		{"tag eu", CustomerFilter{Tags: []string{"eu"}}, []string{"Acme Corp", "Beta Ltd"}},
		{"unknown tag", CustomerFilter{Tags: []string{"none"}}, nil},
		{"owner", CustomerFilter{OwnerIDs: []bson.ObjectID{ann.ID}}, []string{"Acme Corp", "Beta Ltd"}},
		{"owner ben", CustomerFilter{OwnerIDs: []bson.ObjectID{ben.ID}}, []string{"Gamma", "Paren (Inc)"}},
		{"any of two tags", CustomerFilter{Tags: []string{"vip", "us"}}, []string{"Acme Corp", "Dot Star", "Paren (Inc)"}},
		{"any of two owners", CustomerFilter{OwnerIDs: []bson.ObjectID{ann.ID, ben.ID}}, []string{"Acme Corp", "Beta Ltd", "Gamma", "Paren (Inc)"}},
		{"email is exact", CustomerFilter{Email: "dot@star.test"}, []string{"Dot Star"}},
		{"email is not a substring", CustomerFilter{Email: "star.test"}, nil},
		{"search name", CustomerFilter{Search: "gam"}, []string{"Gamma"}},
		{"search phone", CustomerFilter{Search: "555 01"}, []string{"Plus"}},
		{"search a name without its accents", CustomerFilter{Search: "ÁCMÉ"}, []string{"Acme Corp"}},
		{"search email", CustomerFilter{Search: "@beta"}, []string{"Beta Ltd"}},
		{"search company, any case", CustomerFilter{Search: "acme"}, []string{"Acme Corp", "Gamma", "Legacy"}},
		{"search upper case", CustomerFilter{Search: "ACME CORP"}, []string{"Acme Corp"}},
		{"search .* literal", CustomerFilter{Search: ".*"}, []string{"Dot Star"}},
		{"search ( literal", CustomerFilter{Search: "("}, []string{"Paren (Inc)"}},
		{"search + literal", CustomerFilter{Search: "a+b"}, []string{"Plus"}},
		{"search regex syntax does not match", CustomerFilter{Search: "^Acme"}, nil},
		{"search char class does not match", CustomerFilter{Search: "[a-z]"}, nil},
		{"created after (inclusive)", CustomerFilter{CreatedAfter: ptr(day(5))}, []string{"Legacy", "Paren (Inc)", "Plus"}},
		{"created before (exclusive)", CustomerFilter{CreatedBefore: ptr(day(3))}, []string{"Acme Corp", "Beta Ltd"}},
		{"created between", CustomerFilter{CreatedAfter: ptr(day(2)), CreatedBefore: ptr(day(4))}, []string{"Beta Ltd", "Gamma"}},
		{"empty created range", CustomerFilter{CreatedAfter: ptr(day(4)), CreatedBefore: ptr(day(4))}, nil},
		{"updated since (inclusive)", CustomerFilter{UpdatedSince: ptr(day(10))}, []string{"Acme Corp", "Paren (Inc)"}},
		{"updated since, later", CustomerFilter{UpdatedSince: ptr(day(11))}, []string{"Paren (Inc)"}},
		// Bounds finer than BSON's milliseconds: compared exactly, not truncated.
		{"created after, sub-millisecond", CustomerFilter{CreatedAfter: ptr(day(5).Add(500 * time.Microsecond))}, []string{"Legacy", "Plus"}},
		{"created before, sub-millisecond", CustomerFilter{CreatedBefore: ptr(day(3).Add(time.Nanosecond))}, []string{"Acme Corp", "Beta Ltd", "Gamma"}},
		{"updated since, sub-millisecond", CustomerFilter{UpdatedSince: ptr(day(10).Add(time.Microsecond))}, []string{"Paren (Inc)"}},
		{"combined", CustomerFilter{Status: StatusActive, Tags: []string{"vip"}, Search: "corp"}, []string{"Acme Corp"}},
		{"combined, owner and created", CustomerFilter{OwnerIDs: []bson.ObjectID{ben.ID}, CreatedAfter: ptr(day(4))}, []string{"Paren (Inc)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.ListCustomers(ctx, tc.filter, ListOptions{Sort: Sort{Field: "name"}, Limit: 50, Count: true})
			if err != nil {
				t.Fatalf("ListCustomers: %v", err)
			}
			var got []string
			for _, c := range page.Items {
				got = append(got, c.Name)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if page.Total == nil || *page.Total != int64(len(tc.want)) {
				t.Errorf("Total = %v, want %d", page.Total, len(tc.want))
			}
			// Total counts the whole filter, not the page.
			small, err := s.ListCustomers(ctx, tc.filter, ListOptions{Sort: Sort{Field: "name"}, Limit: 1, Count: true})
			if err != nil {
				t.Fatal(err)
			}
			if small.Total == nil || *small.Total != int64(len(tc.want)) {
				t.Errorf("Total with limit 1 = %v, want %d", small.Total, len(tc.want))
			}
			if small.Total != nil && (small.Next != nil) != (len(tc.want) > 1) {
				t.Errorf("limit 1 of %d: Next = %v", len(tc.want), small.Next)
			}
		})
	}
	// Without Count there is no Total.
	page, err := s.ListCustomers(ctx, CustomerFilter{}, ListOptions{Sort: Sort{Field: "name"}, Limit: 50})
	if err != nil || page.Total != nil {
		t.Errorf("ListCustomers without Count: Total %v, %v", page.Total, err)
	}
}

// Customers as the original CRM stored them.
func TestLegacyCustomers(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	created := time.Date(2020, 6, 15, 8, 0, 0, 0, time.UTC)
	id := bson.NewObjectIDFromTimestamp(created)
	rawInsert(t, s.customers.Collection, bson.D{
		{Key: "_id", Value: id}, {Key: "name", Value: "Old Customer"}, {Key: "email", Value: "old@customer.test"},
		{Key: "company", Value: "Old Co"}, {Key: "contact_info", Value: "+1 555 0123, 1 Main St"}, {Key: "notes", Value: "met at the fair"},
	})

	got, err := s.GetCustomer(ctx, id)
	if err != nil {
		t.Fatalf("GetCustomer(legacy): %v", err)
	}
	if got.Name != "Old Customer" || got.Company != "Old Co" || got.Notes != "met at the fair" || got.Status != StatusActive ||
		got.Revision != 0 || got.Tags == nil || got.OwnerID != nil || !got.CreatedAt.Equal(created) || !got.UpdatedAt.Equal(created) {
		t.Errorf("legacy customer = %+v; want active, revision 0, created/updated %v from the ObjectID", got, created)
	}
	page, err := s.ListCustomers(ctx, CustomerFilter{Status: StatusActive}, ListOptions{Sort: Sort{Field: "updated_at", Desc: true}, Limit: 10, Count: true})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != id || !page.Items[0].CreatedAt.Equal(created) {
		t.Fatalf("ListCustomers with a legacy customer: %+v, %v", page, err)
	}

	if _, err := s.UpdateCustomer(ctx, id, 1, CustomerChanges{Name: ptr("x")}); !errors.Is(err, ErrStale) {
		t.Errorf("UpdateCustomer(legacy) at revision 1 = %v, want ErrStale", err)
	}
	upd, err := s.UpdateCustomer(ctx, id, 0, CustomerChanges{Tags: &[]string{"migrated"}, Status: ptr(StatusInactive)})
	if err != nil {
		t.Fatalf("UpdateCustomer(legacy) at revision 0: %v", err)
	}
	if upd.Revision != 1 || upd.Status != StatusInactive || strings.Join(upd.Tags, ",") != "migrated" || !upd.CreatedAt.Equal(created) || !upd.UpdatedAt.After(created) {
		t.Errorf("updated legacy customer = %+v", upd)
	}
	if raw := rawDoc(t, s.customers.Collection, id); raw["contact_info"] != "+1 555 0123, 1 Main St" {
		t.Errorf("the update lost contact_info: %v", raw["contact_info"])
	}

	// A legacy customer can be referenced and, once free of references, deleted.
	u := mustCreateUser(t, s, "U", "u@example.com", RoleMember)
	it := mustCreateInteraction(t, s, u.ID, id, "Call", "Open", nil)
	if err := s.DeleteCustomer(ctx, id, 1, false, nil); !errors.Is(err, ErrReferenced) {
		t.Errorf("DeleteCustomer(legacy with an interaction) = %v, want ErrReferenced", err)
	}
	if err := s.DeleteInteraction(ctx, it.ID, 1); err != nil {
		t.Fatal(err)
	}

	// Delete at revision 0 of another untouched legacy customer.
	id2 := bson.NewObjectIDFromTimestamp(created)
	rawInsert(t, s.customers.Collection, bson.D{{Key: "_id", Value: id2}, {Key: "name", Value: "Old Two"}, {Key: "email", Value: "two@customer.test"}, {Key: "contact_info", Value: "x"}})
	if err := s.DeleteCustomer(ctx, id2, 1, false, nil); !errors.Is(err, ErrStale) {
		t.Errorf("DeleteCustomer(legacy) at revision 1 = %v, want ErrStale", err)
	}
	if err := s.DeleteCustomer(ctx, id2, 0, false, nil); err != nil {
		t.Fatalf("DeleteCustomer(legacy) at revision 0: %v", err)
	}
	if err := s.DeleteCustomer(ctx, id, 1, false, nil); err != nil {
		t.Fatalf("DeleteCustomer(migrated legacy) at revision 1: %v", err)
	}
	if n := countDocs(t, s.customers.Collection, nil); n != 0 {
		t.Errorf("%d customers left", n)
	}
}

// A cascade limited to one user's interactions deletes the customer only if
// every interaction is that user's; otherwise nothing is deleted.
func TestDeleteCustomerCascadeOnlyOf(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	me := mustCreateUser(t, s, "Me", "me@example.com", RoleMember)
	other := mustCreateUser(t, s, "Other", "other@example.com", RoleMember)

	mine := mustCreateCustomer(t, s, &Customer{Name: "Mine", Email: "mine@example.com", OwnerID: &me.ID})
	m1 := mustCreateInteraction(t, s, me.ID, mine.ID, "Call", "Open", nil)
	m2 := mustCreateInteraction(t, s, me.ID, mine.ID, "Note", "Open", nil)

	shared := mustCreateCustomer(t, s, &Customer{Name: "Shared", Email: "shared@example.com", OwnerID: &me.ID})
	s1 := mustCreateInteraction(t, s, me.ID, shared.ID, "Call", "Open", nil)
	s2 := mustCreateInteraction(t, s, other.ID, shared.ID, "Meeting", "Open", nil)

	// Without cascade the limit changes nothing: any interaction blocks.
	var re *ReferencedError
	if err := s.DeleteCustomer(ctx, mine.ID, 1, false, &me.ID); !errors.As(err, &re) || re.By != "interactions" {
		t.Errorf("DeleteCustomer without cascade, limited = %v, want *ReferencedError", err)
	}

	// Someone else's interaction: refused, nothing deleted, nothing marked.
	err := s.DeleteCustomer(ctx, shared.ID, 1, true, &me.ID)
	if !errors.Is(err, ErrCascadeRefused) {
		t.Fatalf("limited cascade over another user's interaction = %v, want ErrCascadeRefused", err)
	}
	got, err := s.GetCustomer(ctx, shared.ID)
	if err != nil || got.DeletingAt != nil || got.Revision != 1 {
		t.Fatalf("customer after the refused cascade: %+v, %v; want it unmarked at revision 1", got, err)
	}
	for _, it := range []*Interaction{s1, s2} {
		if _, err := s.GetInteraction(ctx, it.ID); err != nil {
			t.Errorf("interaction %v after the refused cascade: %v", it.ID, err)
		}
	}
	mustCreateInteraction(t, s, me.ID, shared.ID, "Task", "Open", nil)

	// Only the caller's interactions: the cascade goes through.
	if err := s.DeleteCustomer(ctx, mine.ID, 1, true, &me.ID); err != nil {
		t.Fatalf("limited cascade over the caller's own interactions: %v", err)
	}
	if _, err := s.GetCustomer(ctx, mine.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("customer after the cascade: %v", err)
	}
	for _, it := range []*Interaction{m1, m2} {
		if _, err := s.GetInteraction(ctx, it.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("interaction %v after the cascade: %v, want ErrNotFound", it.ID, err)
		}
	}
	// An unlimited cascade takes everyone's.
	if err := s.DeleteCustomer(ctx, shared.ID, 1, true, nil); err != nil {
		t.Fatalf("unlimited cascade: %v", err)
	}
	if n := countDocs(t, s.interactions.Collection, nil); n != 0 {
		t.Errorf("%d interactions left", n)
	}
}

// A limited cascade whose check passed, racing a write that hands one of
// the customer's interactions to another user before the cascade's delete:
// that interaction is spared, and the cascade is refused, as it would be had
// the write come first. The caller's own interactions are gone already, as
// when a cascade is interrupted; the customer stays.
func TestDeleteCustomerCascadeOnlyOfRacingReassignment(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	ctx := t.Context()
	me := mustCreateUser(t, s, "Me", "me@example.com", RoleMember)
	other := mustCreateUser(t, s, "Other", "other@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "Mine", Email: "mine@example.com", OwnerID: &me.ID})
	handed := mustCreateInteraction(t, s, me.ID, c.ID, "Call", "Open", nil)
	kept := mustCreateInteraction(t, s, me.ID, c.ID, "Note", "Open", nil)

	// Straight through the driver: the store's own writes wait for the one
	// the hook interrupts.
	hook.Store(onceBefore("delete", interactionsCollection, func() {
		rawSet(t, s.interactions.Collection, handed.ID, bson.D{{Key: "user_id", Value: other.ID}})
	}))
	err := s.DeleteCustomer(ctx, c.ID, c.Revision, true, &me.ID)
	hook.Store(nil)
	if !errors.Is(err, ErrCascadeRefusedPartly) {
		t.Fatalf("limited cascade racing a reassignment = %v, want ErrCascadeRefusedPartly", err)
	}
	got, err := s.GetInteraction(ctx, handed.ID)
	if err != nil || got.UserID != other.ID {
		t.Errorf("the reassigned interaction after the refused cascade: %+v, %v; want it kept, of the other user", got, err)
	}
	if cust, err := s.GetCustomer(ctx, c.ID); err != nil || cust.DeletingAt != nil {
		t.Errorf("customer after the refused cascade: %+v, %v; want it in place, unmarked", cust, err)
	}
	if _, err := s.GetInteraction(ctx, kept.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the caller's own interaction: %v, want it deleted (ErrNotFound)", err)
	}
	// What was deleted, and only that, left a trace.
	if traced := tracedIDs(t, s); !slices.Equal(traced, []bson.ObjectID{kept.ID}) {
		t.Errorf("traces of %v; want the caller's own interaction's alone, %v", traced, kept.ID)
	}
}

// An update moving an interaction to a customer whose cascade is under way:
// its check passed before the customer was marked, its write lands after the
// cascade's check and before its delete, which takes the interaction with it.
// The update came first and succeeded, so it says so, whether the cascade
// then goes through or is refused half-way (another user was handed one of
// the customer's interactions just before its delete) — before, it answered
// ErrNotFound, a failure that had deleted the interaction.
func TestUpdateInteractionMovedIntoACascade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		admin   bool // an admin's cascade, which checks for no one's interactions
		refused bool
	}{
		// The move writes just before the cascade's first read of the
		// interactions: the member's checks for others' interactions, the
		// admin's reads what to delete. (A move the cascade never read:
		// TestMoveTakenByACascadeLeavesATrace.)
		{"a member's cascade", false, false},
		{"a member's cascade, refused half-way", false, true},
		{"an admin's cascade", true, false},
	} {
		refused := tc.refused
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, hook := openHookedStore(t)
			ctx := t.Context()
			me := mustCreateUser(t, s, "Me", "me@example.com", RoleMember)
			other := mustCreateUser(t, s, "Other", "other@example.com", RoleMember)
			doomed := mustCreateCustomer(t, s, &Customer{Name: "Doomed", Email: "doomed@example.com", OwnerID: &me.ID})
			stays := mustCreateCustomer(t, s, &Customer{Name: "Stays", Email: "stays@example.com", OwnerID: &me.ID})
			handed := mustCreateInteraction(t, s, me.ID, doomed.ID, "Call", "Open", nil)
			moving := mustCreateInteraction(t, s, me.ID, stays.ID, "Note", "Open", nil)
			// The move waits for the cascade while it holds its record's lock;
			// the cascade takes its customer's, which must be another stripe's.
			for s.docLock(moving.ID[:]) == s.docLock(doomed.ID[:]) {
				moving = mustCreateInteraction(t, s, me.ID, stays.ID, "Note", "Open", nil)
			}

			checking, moved := make(chan struct{}), make(chan struct{})
			deleted := make(chan error, 1)
			wait := func(ch chan struct{}) {
				select {
				case <-ch:
				case <-time.After(testTimeout):
					t.Error("the interleaving never happened")
				}
			}
			var step atomic.Int32
			h := commandHook(func(name, coll string) {
				switch {
				case name == "find" && coll == interactionsCollection && step.CompareAndSwap(0, 1):
					// The move has checked the customer and reads the
					// interaction before writing: the cascade starts now.
					onlyOf := &me.ID
					if tc.admin {
						onlyOf = nil
					}
					go func() { deleted <- s.DeleteCustomer(ctx, doomed.ID, doomed.Revision, true, onlyOf) }()
					wait(checking)
				case name == "find" && coll == interactionsCollection && step.CompareAndSwap(1, 2):
					// The cascade has marked the customer and reads its
					// interactions: the move writes now.
					close(checking)
					wait(moved)
				case name == "find" && coll == customersCollection && step.CompareAndSwap(2, 3):
					close(moved) // the move's second check: its write is done
				case name == "delete" && coll == interactionsCollection && refused && step.CompareAndSwap(3, 4):
					// The cascade's delete, another user handed an interaction
					// just before. Straight through the driver: the store's
					// own writes wait for the one the hook interrupts.
					rawSet(t, s.interactions.Collection, handed.ID, bson.D{{Key: "user_id", Value: other.ID}})
				}
			})
			hook.Store(&h)
			got, err := s.UpdateInteraction(ctx, moving.ID, moving.Revision, InteractionChanges{CustomerID: &doomed.ID, Status: ptr("Resolved")})
			deleteErr := <-deleted
			hook.Store(nil)

			if err != nil {
				t.Fatalf("the move that came first = %v, want it to succeed", err)
			}
			if got.CustomerID != doomed.ID || got.Status != "Resolved" || got.Revision != moving.Revision+1 || got.Description != moving.Description {
				t.Errorf("the move returned %+v; want the interaction as it wrote it", got)
			}
			if _, err := s.GetInteraction(ctx, moving.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("the moved interaction: %v, want it taken by the cascade (ErrNotFound)", err)
			}
			if _, err := s.GetCustomer(ctx, stays.ID); err != nil {
				t.Errorf("the customer it moved from: %v", err)
			}
			_, customerErr := s.GetCustomer(ctx, doomed.ID)
			kept, handedErr := s.GetInteraction(ctx, handed.ID)
			switch {
			case !refused && (deleteErr != nil || !errors.Is(customerErr, ErrNotFound) || !errors.Is(handedErr, ErrNotFound)):
				t.Errorf("the cascade = %v; customer %v, its interaction %v: want all deleted", deleteErr, customerErr, handedErr)
			case refused && (!errors.Is(deleteErr, ErrCascadeRefusedPartly) || customerErr != nil || handedErr != nil || kept.UserID != other.ID):
				t.Errorf("the cascade = %v; customer %v, the handed interaction %+v, %v: want ErrCascadeRefusedPartly, both kept", deleteErr, customerErr, kept, handedErr)
			}
			// Whoever knew of it, the moved interaction's deletion is traced.
			if traced := tracedIDs(t, s); !slices.Contains(traced, moving.ID) {
				t.Errorf("traces of %v: none of the moved interaction, %v", traced, moving.ID)
			}
		})
	}
}

// The owner starts being deleted between the store's check and its write.
func TestCustomerOwnerRacingDelete(t *testing.T) {
	t.Parallel()
	s, hook := openHookedStore(t)
	ctx := t.Context()
	// Create: the insert is undone.
	owner := mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)
	mark, deleted := deleteDecidedSoon(t, s.users.Collection, owner.ID, true)
	hook.Store(onceBefore("insert", customersCollection, mark))
	err := s.CreateCustomer(ctx, &Customer{Name: "New", Email: "new@example.com", Status: StatusActive, OwnerID: &owner.ID})
	hook.Store(nil)
	deleted()
	var me *MissingReferenceError
	if !errors.As(err, &me) || me.Field != "owner_id" {
		t.Fatalf("CreateCustomer racing its owner's delete = %v, want *MissingReferenceError for owner_id", err)
	}
	if n := countDocs(t, s.customers.Collection, nil); n != 0 {
		t.Errorf("%d customers left after the refused create", n)
	}

	// Update: the refused change must leave the customer as it was.
	owner = mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)
	c := mustCreateCustomer(t, s, &Customer{Name: "Old Name", Email: "c@example.com", Notes: "old notes"})
	mark, deleted = deleteDecidedSoon(t, s.users.Collection, owner.ID, true)
	hook.Store(onceBefore("findAndModify", customersCollection, mark))
	_, err = s.UpdateCustomer(ctx, c.ID, 1, CustomerChanges{OwnerID: &owner.ID, Name: ptr("New Name"), Notes: ptr("")})
	hook.Store(nil)
	deleted()
	if !errors.As(err, &me) || me.Field != "owner_id" {
		t.Fatalf("UpdateCustomer racing the owner's delete = %v, want *MissingReferenceError for owner_id", err)
	}
	got, err := s.GetCustomer(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OwnerID != nil {
		t.Errorf("owner_id %v after the refused update, want none (as before)", *got.OwnerID)
	}
	if got.Name != "Old Name" || got.Notes != "old notes" {
		t.Errorf("after the refused update: name %q, notes %q; want the original Old Name/old notes (a refused write changes nothing)", got.Name, got.Notes)
	}
}

// Names sort without case or accents, also those of the original CRM's
// documents once the store has given them their sort key.
func TestCustomersSortByNameWithoutCaseOrAccents(t *testing.T) {
	t.Parallel()
	s := openTestStore(t)
	ctx := t.Context()
	for i, name := range []string{"zoe Zed", "Émile Zola", "Bob Upper", "Adam Apple", "aaron lower"} {
		if err := s.CreateCustomer(ctx, &Customer{Name: name, Email: fmt.Sprintf("c%d@example.com", i), Status: StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	rawInsert(t, s.customers.Collection, bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: "Álvaro Díaz"}, {Key: "email", Value: "old@example.com"}})
	renamed := &Customer{Name: "Before", Email: "renamed@example.com", Status: StatusActive}
	if err := s.CreateCustomer(ctx, renamed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateCustomer(ctx, renamed.ID, 1, CustomerChanges{Name: ptr("bea Later")}); err != nil {
		t.Fatal(err)
	}
	if err := s.fillNameKeys(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"aaron lower", "Adam Apple", "Álvaro Díaz", "bea Later", "Bob Upper", "Émile Zola", "zoe Zed"}
	for _, desc := range []bool{false, true} {
		var got []string
		opts := ListOptions{Sort: Sort{Field: "name", Desc: desc}, Limit: 2}
		for {
			page, err := s.ListCustomers(ctx, CustomerFilter{}, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Items {
				got = append(got, c.Name)
			}
			if page.Next == nil {
				break
			}
			opts.After = page.Next
		}
		expected := slices.Clone(want)
		if desc {
			slices.Reverse(expected)
		}
		if !slices.Equal(got, expected) {
			t.Errorf("by name (descending: %v), in pages of 2: %q, want %q", desc, got, expected)
		}
	}
}

// The backfill of the name sort key (the janitor's fillNameKeys) gives every
// document of the original CRM the key of its name, and leaves a document
// renamed since the backfill read it: here by the original CRM, which
// writes no key. On the bundled engine each update filters by _id alone,
// the only filter it looks up by index: {_id, name} read the whole
// collection once per document (1,000 documents took 45 s).
func TestFillNameKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ idOnly, shared bool }{{true, false}, {true, true}, {false, false}} {
		t.Run(fmt.Sprintf("filterByIDOnly=%v,sharedEngine=%v", tc.idOnly, tc.shared), func(t *testing.T) {
			t.Parallel()
			idOnly := tc.idOnly
			var (
				mu       sync.Mutex
				filters  []bson.Raw // of the backfill's updates
				renaming atomic.Bool
				rename   atomic.Pointer[func()]
			)
			s := openMonitored(t, &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
				if c, _ := e.Command.Lookup(e.CommandName).StringValueOK(); e.CommandName != "update" || c != customersCollection || renaming.Load() {
					return
				}
				if f := rename.Swap(nil); f != nil {
					renaming.Store(true)
					(*f)()
					renaming.Store(false)
				}
				updates, _ := e.Command.Lookup("updates").Array().Values()
				mu.Lock()
				defer mu.Unlock()
				for _, u := range updates {
					filters = append(filters, u.Document().Lookup("q").Document())
				}
			}})
			s.stopJanitor() // its first backfill could run at any moment
			<-s.janitorDone
			s.filterByIDOnly, s.sharedEngine = idOnly, tc.shared

			const n, racing = 40, 2
			ids := make([]bson.ObjectID, n+racing)
			for i := range ids {
				ids[i] = bson.NewObjectID()
				rawInsert(t, s.customers.Collection, bson.D{{Key: "_id", Value: ids[i]}, {Key: "name", Value: fmt.Sprintf("Ñandú %02d", i)}, {Key: "email", Value: fmt.Sprintf("c%d@old.test", i)}})
			}
			// The original CRM renames the last ones once the backfill has read them all.
			renameLast := func() {
				for _, id := range ids[n:] {
					rawSet(t, s.customers.Collection, id, bson.D{{Key: "name", Value: "Zorro " + id.Hex()}})
				}
			}
			rename.Store(&renameLast)
			if err := s.fillNameKeys(t.Context()); err != nil {
				t.Fatalf("fillNameKeys: %v", err)
			}
			if rename.Load() != nil {
				t.Fatal("the backfill wrote nothing")
			}
			for i, id := range ids {
				doc := rawDoc(t, s.customers.Collection, id)
				want := any(fmt.Sprintf("nandu %02d", i))
				if i >= n {
					want = nil // renamed after the read: left for the next run
				}
				if doc["name_key"] != want {
					t.Errorf("customer %d (%v): name_key %v, want %v", i, doc["name"], doc["name_key"], want)
				}
			}
			if idOnly {
				mu.Lock()
				for _, f := range filters {
					if keys, _ := f.Elements(); len(keys) != 1 || keys[0].Key() != "_id" {
						t.Errorf("the backfill updated with the filter %v, want {_id: X}", f)
						break
					}
				}
				mu.Unlock()
			}

			// The next run gives the renamed ones the key of their new name.
			if err := s.fillNameKeys(t.Context()); err != nil {
				t.Fatalf("fillNameKeys, again: %v", err)
			}
			for _, id := range ids[n:] {
				if doc := rawDoc(t, s.customers.Collection, id); doc["name_key"] != "zorro "+id.Hex() {
					t.Errorf("renamed customer %v: name_key %v after the next run", doc["name"], doc["name_key"])
				}
			}
			if n := countDocs(t, s.claims.Collection, nil); n != 0 {
				t.Errorf("%d claims left behind", n)
			}
			if n := countDocs(t, s.customers.Collection, bson.D{{Key: "revision", Value: bson.D{{Key: "$exists", Value: true}}}}); n != 0 {
				t.Errorf("%d customers got a revision: the sort key is the store's own and changes no version", n)
			}
		})
	}
}

// BenchmarkFillNameKeys backfills the sort key of 1,000 customers that the
// original CRM wrote, on the bundled engine.
func BenchmarkFillNameKeys(b *testing.B) {
	s, err := Open(b.Context(), Config{DataDir: b.TempDir(), Timeout: time.Minute, Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	s.stopJanitor()
	<-s.janitorDone
	docs := make([]any, 1000)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "name", Value: fmt.Sprintf("Old %d", i)}, {Key: "email", Value: fmt.Sprintf("c%d@old.test", i)}}
	}
	if _, err := s.customers.Collection.InsertMany(b.Context(), docs); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		if _, err := s.customers.Collection.UpdateMany(b.Context(), bson.D{}, bson.D{{Key: "$unset", Value: bson.D{{Key: "name_key", Value: ""}}}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.fillNameKeys(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
