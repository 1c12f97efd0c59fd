package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/opencrm/crm/gen"
)

// Safe writes through the HTTP API: ETags and conditional requests, the race of
// many writers on one record, JSON Merge Patch, Idempotency-Key, referential
// integrity, and server-owned fields.

func TestETagsAndConditionalGet(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Grace Hopper")

	for _, path := range []string{"/customers/" + c.Id, "/users/" + admin.Id, "/users/me"} {
		res, _ := e.raw(http.MethodGet, path, admin.token, "", "")
		tag := res.Header.Get("ETag")
		if res.StatusCode != http.StatusOK || tag == "" {
			t.Fatalf("GET %s: %d, ETag %q", path, res.StatusCode, tag)
		}
		res, body := e.raw(http.MethodGet, path, admin.token, "", "", "If-None-Match", tag)
		if res.StatusCode != http.StatusNotModified || len(body) != 0 || res.Header.Get("ETag") != tag {
			t.Errorf("GET %s with a matching If-None-Match: %d %q, ETag %q", path, res.StatusCode, body, res.Header.Get("ETag"))
		}
		res, _ = e.raw(http.MethodGet, path, admin.token, "", "", "If-None-Match", `"999", `+tag)
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with a list of tags holding the current one: %d", path, res.StatusCode)
		}
		res, _ = e.raw(http.MethodGet, path, admin.token, "", "", "If-None-Match", `"999"`)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with a stale If-None-Match: %d, want 200", path, res.StatusCode)
		}
		res, body = e.raw(http.MethodGet, path, admin.token, "", "", "If-None-Match", `999`)
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?If-None-Match")
	}

	// /users/me shows whoever signs in: one user's tag never matches another's
	// profile, and it is a current tag of the user's own address.
	res, _ := e.raw(http.MethodGet, "/users/me", admin.token, "", "")
	adminTag := res.Header.Get("ETag")
	member := e.addUser(admin, "Mo Member", gen.Member)
	res, _ = e.raw(http.MethodGet, "/users/me", member.token, "", "")
	if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == adminTag {
		t.Fatalf("the member's /users/me: %d, ETag %s, the admin's %s", res.StatusCode, res.Header.Get("ETag"), adminTag)
	}
	res, _ = e.raw(http.MethodGet, "/users/me", member.token, "", "", "If-None-Match", adminTag)
	if res.StatusCode != http.StatusOK {
		t.Errorf("the member's /users/me with the admin's tag: %d, want 200", res.StatusCode)
	}
	res, body := e.raw(http.MethodPatch, "/users/"+admin.Id, admin.token, "application/json", `{"company":"Analytical Engines"}`, "If-Match", adminTag)
	if res.StatusCode != http.StatusOK {
		t.Errorf("PATCH /users/{id} with the tag of /users/me: %d %s", res.StatusCode, body)
	}

	// Every write returns the new ETag, and GET agrees.
	res, body = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/merge-patch+json", `{"notes":"x"}`)
	patched := res.Header.Get("ETag")
	if res.StatusCode != http.StatusOK || patched == "" {
		t.Fatalf("PATCH: %d %s", res.StatusCode, body)
	}
	res, _ = e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
	if got := res.Header.Get("ETag"); got != patched {
		t.Errorf("GET after PATCH has ETag %s, PATCH said %s", got, patched)
	}
}

func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()

	type write struct {
		name, method, body string
		path               func(id string) string
	}
	writes := []write{
		{"PATCH customer", http.MethodPatch, `{"notes":"changed"}`, func(id string) string { return "/customers/" + id }},
		{"PUT customer", http.MethodPut, `{"name":"Renamed","email":"renamed@example.org","status":"active"}`, func(id string) string { return "/customers/" + id }},
		{"DELETE customer", http.MethodDelete, ``, func(id string) string { return "/customers/" + id }},
	}
	for i, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			c := e.customer(admin, fmt.Sprintf("Customer %d", i))
			res, _ := e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
			current := res.Header.Get("ETag")
			// Someone else changes it.
			res, _ = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"phone":"+1 555 0199"}`)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("concurrent change: %d", res.StatusCode)
			}
			ct := ""
			if w.body != "" {
				ct = "application/json"
			}
			res, body := e.raw(w.method, w.path(c.Id), admin.token, ct, w.body, "If-Match", current)
			wantProblem(t, http.StatusPreconditionFailed, body, res.StatusCode, "precondition-failed")
			after, _ := e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
			if after.StatusCode != http.StatusOK || after.Header.Get("ETag") == current {
				t.Fatalf("after a refused %s: %d, ETag %s", w.method, after.StatusCode, after.Header.Get("ETag"))
			}
			fresh := after.Header.Get("ETag")
			// A weak tag never matches If-Match.
			res, _ = e.raw(w.method, w.path(c.Id), admin.token, ct, w.body, "If-Match", "W/"+fresh)
			if res.StatusCode != http.StatusPreconditionFailed {
				t.Errorf("weak If-Match: %d, want 412", res.StatusCode)
			}
			res, body = e.raw(w.method, w.path(c.Id), admin.token, ct, w.body, "If-Match", fresh)
			if res.StatusCode >= 300 {
				t.Errorf("%s with the current ETag: %d %s", w.method, res.StatusCode, body)
			}
		})
	}
	t.Run("star matches any existing record", func(t *testing.T) {
		c := e.customer(admin, "Star Customer")
		res, body := e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"x"}`, "If-Match", "*")
		if res.StatusCode != http.StatusOK {
			t.Errorf("If-Match *: %d %s", res.StatusCode, body)
		}
	})
	t.Run("header lines combine", func(t *testing.T) {
		c := e.customer(admin, "Two Lines")
		res, _ := e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
		current := res.Header.Get("ETag")
		// Two If-Match lines mean one list (RFC 9110 section 5.3).
		res, body := e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"x"}`,
			"If-Match", `"999"`, "If-Match", current)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("If-Match in two lines: %d %s", res.StatusCode, body)
		}
		current = res.Header.Get("ETag")
		res, _ = e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "", "If-None-Match", `"999"`, "If-None-Match", current)
		if res.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match in two lines: %d, want 304", res.StatusCode)
		}
		// An empty list element is allowed (RFC 9110 section 5.6.1); nothing but those is not.
		res, body = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"y"}`, "If-Match", current+", ")
		if res.StatusCode != http.StatusOK {
			t.Errorf("If-Match with an empty element: %d %s", res.StatusCode, body)
		}
		res, body = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"z"}`, "If-Match", " , ")
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?If-Match")
		// A header that holds one value may not come twice.
		for _, twice := range [][]string{
			{"Idempotency-Key", "key-1", "Idempotency-Key", "key-2"},
			{"Authorization", "Bearer " + admin.token, "Authorization", "Bearer " + admin.token},
		} {
			res, body = e.raw(http.MethodPost, "/customers", admin.token, "application/json",
				`{"name":"Twice","email":"twice@example.com"}`, twice...)
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?"+twice[0])
		}
	})
	t.Run("malformed If-Match", func(t *testing.T) {
		c := e.customer(admin, "Malformed Tag")
		res, body := e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"x"}`, "If-Match", `1`)
		wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "?If-Match")
	})
}

// TestConcurrentWritersOneVersion races many writers that all hold the same
// version of one record: exactly one may win per version, every other gets 412,
// and the winner's change is what is stored.
func TestConcurrentWritersOneVersion(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Contended Customer")
	const writers = 16

	etag := `"1"`
	for round := range 3 {
		var wg sync.WaitGroup
		statuses := make([]int, writers)
		tags := make([]string, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"notes":"round %d writer %d"}`, round, w)
				res := retryUnavailable(func() *http.Response {
					res, _ := e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/merge-patch+json", body, "If-Match", etag)
					return res
				})
				statuses[w], tags[w] = res.StatusCode, res.Header.Get("ETag")
			}()
		}
		wg.Wait()
		winner := -1
		for w, s := range statuses {
			switch s {
			case http.StatusOK:
				if winner >= 0 {
					t.Fatalf("round %d: writers %d and %d both won version %s", round, winner, w, etag)
				}
				winner = w
			case http.StatusPreconditionFailed:
			default:
				t.Fatalf("round %d: writer %d got %d", round, w, s)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won version %s", round, etag)
		}
		got, err := e.as(admin.token).GetCustomerWithResponse(context.Background(), c.Id, nil)
		mustStatus(t, got, err, http.StatusOK)
		if want := fmt.Sprintf("round %d writer %d", round, winner); deref(got.JSON200.Notes) != want {
			t.Fatalf("round %d: stored notes %q, want the winner's %q", round, deref(got.JSON200.Notes), want)
		}
		etag = tags[winner]
	}
}

// TestConcurrentWritersWithoutIfMatch races writers that do not name a version
// (no If-Match, or "If-Match: *", which any version of the record meets): all
// succeed, each applied to the latest version — the revision counts every one
// of them, so none was lost.
func TestConcurrentWritersWithoutIfMatch(t *testing.T) {
	for _, ifMatch := range []string{"", "*"} {
		t.Run(fmt.Sprintf("If-Match %q", ifMatch), func(t *testing.T) {
			e := newEnv(t)
			admin := e.bootstrap()
			c := e.customer(admin, "Busy Customer")
			var headers []string
			if ifMatch != "" {
				headers = []string{"If-Match", ifMatch}
			}
			const writers = 12
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body []byte
					res := retryUnavailable(func() *http.Response {
						var res *http.Response
						res, body = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", fmt.Sprintf(`{"notes":"writer %d"}`, w), headers...)
						return res
					})
					if res.StatusCode != http.StatusOK {
						t.Errorf("writer %d: %d %s", w, res.StatusCode, body)
					}
				}()
			}
			wg.Wait()
			res, _ := e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
			if got, want := res.Header.Get("ETag"), fmt.Sprintf(`"%d"`, 1+writers); got != want {
				t.Errorf("after %d writes the ETag is %s, want %s: a write was lost", writers, got, want)
			}
		})
	}
}

func TestMergePatch(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	created, err := e.as(admin.token).CreateCustomerWithResponse(context.Background(), nil, gen.CreateCustomerJSONRequestBody{
		Name: "Patchy", Email: "patchy@example.org", Phone: ptr("+1 555 0100"), Company: ptr("Acme"), Notes: ptr("n"), Tags: &[]string{"a", "b"},
	})
	mustStatus(t, created, err, http.StatusCreated)
	id := created.JSON201.Id
	path := "/customers/" + id

	get := func() map[string]any {
		_, body := e.raw(http.MethodGet, path, admin.token, "", "")
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	res, body := e.raw(http.MethodPatch, path, admin.token, "application/merge-patch+json", `{"company":null,"tags":["c"]}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d %s", res.StatusCode, body)
	}
	m := get()
	if _, ok := m["company"]; ok {
		t.Errorf("company still %v after null", m["company"])
	}
	if m["phone"] != "+1 555 0100" || m["notes"] != "n" || m["name"] != "Patchy" || fmt.Sprint(m["tags"]) != "[c]" {
		t.Errorf("fields not in the patch changed: %v", m)
	}
	res, body = e.raw(http.MethodPatch, path, admin.token, "application/json", `{"tags":null}`)
	if res.StatusCode != http.StatusOK || fmt.Sprint(get()["tags"]) != "[]" {
		t.Errorf("tags:null: %d %s", res.StatusCode, body)
	}

	before := get()
	for _, tc := range []struct{ body, field string }{
		{`{"name":null}`, "/name"},
		{`{"email":null}`, "/email"},
		{`{"status":null}`, "/status"},
		{`{"created_at":"2020-01-01T00:00:00Z"}`, "/created_at"},
		{`{"updated_at":"2020-01-01T00:00:00Z"}`, "/updated_at"},
		{`{"id":"0123456789abcdef01234567"}`, "/id"},
		{`{"revision":7}`, "/revision"},
		{`{}`, ""},
	} {
		res, body := e.raw(http.MethodPatch, path, admin.token, "application/merge-patch+json", tc.body)
		if tc.field == "" {
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input")
		} else {
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.field)
		}
	}
	if after := get(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused patches changed the record:\n%v\n%v", before, after)
	}
}

func TestServerOwnedFieldsOnCreate(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	for _, body := range []string{
		`{"name":"A","email":"a@example.org","created_at":"2020-01-01T00:00:00Z"}`,
		`{"name":"A","email":"a@example.org","updated_at":"2020-01-01T00:00:00Z"}`,
		`{"name":"A","email":"a@example.org","id":"0123456789abcdef01234567"}`,
	} {
		res, data := e.raw(http.MethodPost, "/customers", admin.token, "application/json", body)
		wantProblem(t, http.StatusBadRequest, data, res.StatusCode, "invalid-input")
	}
	before := time.Now().Add(-time.Second)
	c := e.customer(admin, "Timed")
	if c.CreatedAt.Before(before) || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("created_at %s, updated_at %s", c.CreatedAt, c.UpdatedAt)
	}
	time.Sleep(5 * time.Millisecond)
	res, data := e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", `{"notes":"later"}`)
	var got gen.Customer
	_ = json.Unmarshal(data, &got)
	if res.StatusCode != http.StatusOK || !got.CreatedAt.Equal(c.CreatedAt) || !got.UpdatedAt.After(c.UpdatedAt) {
		t.Errorf("after PATCH: created_at %s (was %s), updated_at %s (was %s)", got.CreatedAt, c.CreatedAt, got.UpdatedAt, c.UpdatedAt)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	body := `{"name":"Once Only","email":"once@example.org"}`
	key := "key-" + t.Name()

	res1, body1 := e.raw(http.MethodPost, "/customers", admin.token, "application/json", body, "Idempotency-Key", key)
	if res1.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", res1.StatusCode, body1)
	}
	// Same body, other whitespace and member order: the same request.
	res2, body2 := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{ "email": "once@example.org", "name": "Once Only" }`, "Idempotency-Key", key)
	if res2.StatusCode != http.StatusCreated || string(body2) != string(body1) {
		t.Fatalf("retry: %d %s, want the first response %s", res2.StatusCode, body2, body1)
	}
	if res2.Header.Get("Location") != res1.Header.Get("Location") || res2.Header.Get("ETag") != res1.Header.Get("ETag") {
		t.Errorf("retry headers differ: Location %q/%q ETag %q/%q", res1.Header.Get("Location"), res2.Header.Get("Location"), res1.Header.Get("ETag"), res2.Header.Get("ETag"))
	}
	if res2.Header.Get("Idempotent-Replayed") != "true" || res1.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("Idempotent-Replayed: first %q, retry %q", res1.Header.Get("Idempotent-Replayed"), res2.Header.Get("Idempotent-Replayed"))
	}

	res3, body3 := e.raw(http.MethodPost, "/customers", admin.token, "application/json", `{"name":"Other","email":"other@example.org"}`, "Idempotency-Key", key)
	wantProblem(t, http.StatusUnprocessableEntity, body3, res3.StatusCode, "idempotency-key-reuse", "?Idempotency-Key")
	// The same key on another operation, whatever the body, is a mistake too.
	customerID := strings.TrimPrefix(res1.Header.Get("Location"), "/customers/")
	res3, body3 = e.raw(http.MethodPost, "/interactions", admin.token, "application/json", `{"customer_id":"`+customerID+`","type":"Note"}`, "Idempotency-Key", key)
	wantProblem(t, http.StatusUnprocessableEntity, body3, res3.StatusCode, "idempotency-key-reuse", "?Idempotency-Key")

	// Another user's key is another key.
	bob := e.addUser(admin, "Bob Member", gen.Member)
	res4, body4 := e.raw(http.MethodPost, "/customers", bob.token, "application/json", `{"name":"Bobs","email":"bobs@example.org"}`, "Idempotency-Key", key)
	if res4.StatusCode != http.StatusCreated {
		t.Errorf("same key, other user: %d %s", res4.StatusCode, body4)
	}

	// A request that failed created nothing, so its retry runs again.
	dupBody := `{"name":"Dup","email":"once@example.org"}`
	res5, _ := e.raw(http.MethodPost, "/customers", admin.token, "application/json", dupBody, "Idempotency-Key", "dup-key")
	if res5.StatusCode != http.StatusConflict {
		t.Fatalf("duplicate email: %d", res5.StatusCode)
	}
	res6, _ := e.raw(http.MethodPost, "/customers", admin.token, "application/json", dupBody, "Idempotency-Key", "dup-key")
	if res6.StatusCode != http.StatusConflict || res6.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry of a failed create: %d, replayed %q", res6.StatusCode, res6.Header.Get("Idempotent-Replayed"))
	}

	if n := countCustomers(t, e, admin, "once@example.org"); n != 1 {
		t.Errorf("%d customers with the idempotent email, want 1", n)
	}
}

func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Timeline Owner")
	body := fmt.Sprintf(`{"customer_id":%q,"type":"Call","description":"one call"}`, c.Id)
	const retries = 10
	var wg sync.WaitGroup
	locations := make([]string, retries)
	for i := range retries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, data := e.raw(http.MethodPost, "/interactions", admin.token, "application/json", body, "Idempotency-Key", "concurrent-key")
			if res.StatusCode != http.StatusCreated {
				t.Errorf("retry %d: %d %s", i, res.StatusCode, data)
			}
			locations[i] = res.Header.Get("Location")
		}()
	}
	wg.Wait()
	for _, l := range locations {
		if l != locations[0] {
			t.Fatalf("concurrent retries created different records: %v", locations)
		}
	}
	list, err := e.as(admin.token).ListCustomerInteractionsWithResponse(context.Background(), c.Id, nil)
	mustStatus(t, list, err, http.StatusOK)
	if n := len(list.JSON200.Data); n != 1 {
		t.Errorf("%d interactions, want exactly 1", n)
	}
}

func TestIdempotencyKeyExpires(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	body := `{"name":"Expiring","email":"expiring@example.org"}`
	res, _ := e.raw(http.MethodPost, "/customers", admin.token, "application/json", body, "Idempotency-Key", "old-key")
	if res.StatusCode != http.StatusCreated {
		t.Fatal(res.StatusCode)
	}
	// Age the record past its 24 hours, as if a day had gone by.
	raw := rawDB(t, e)
	_, err := raw.Collection("idempotency_keys").UpdateMany(context.Background(), bson.D{},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: time.Now().Add(-time.Minute)}}}})
	if err != nil {
		t.Fatal(err)
	}
	// The key is forgotten: the request runs again (and meets the email it made).
	res, data := e.raw(http.MethodPost, "/customers", admin.token, "application/json", body, "Idempotency-Key", "old-key")
	if res.StatusCode != http.StatusConflict || res.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("after expiry: %d %s, want the request run again (409)", res.StatusCode, data)
	}
}

// TestIdempotencyKeyAfterPanic: a request with an Idempotency-Key that
// panics may or may not have created its record, so the key is never run
// again: a retry is told so at once (not after waiting for a request that is
// over, and not by creating the record twice), and a new key creates it.
func TestIdempotencyKeyAfterPanic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		after   bool // panic once the insert succeeded, not before it is sent
		created int  // customers the request that panicked left
	}{
		{"before the insert", false, 0},
		{"after the insert", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			isCustomerInsert := func(name string, cmd bson.Raw) bool {
				return name == "insert" && (cmd == nil || cmd.Lookup("insert").StringValue() == "customers")
			}
			var inserting atomic.Bool // the customer insert is under way (Succeeded has no command)
			e := newWatchedEnv(t, &event.CommandMonitor{
				// A bug that panics deep in the request, here in the database driver.
				Started: func(_ context.Context, ev *event.CommandStartedEvent) {
					if !isCustomerInsert(ev.CommandName, ev.Command) || !armed.Load() {
						return
					}
					if !tc.after && armed.CompareAndSwap(true, false) {
						panic("test: panic while inserting a customer")
					}
					inserting.Store(true)
				},
				Succeeded: func(_ context.Context, ev *event.CommandSucceededEvent) {
					if ev.CommandName == "insert" && inserting.CompareAndSwap(true, false) && armed.CompareAndSwap(true, false) {
						panic("test: panic while inserting a customer")
					}
				},
			})
			admin := e.bootstrap()
			body := `{"name":"Panic Survivor","email":"panic@example.org"}`

			armed.Store(true)
			res, data := e.raw(http.MethodPost, "/customers", admin.token, "application/json", body, "Idempotency-Key", "panic-key")
			wantProblem(t, http.StatusInternalServerError, data, res.StatusCode, "internal")
			if !strings.Contains(e.logs.String(), "test: panic while inserting a customer") {
				t.Error("the panic was not logged")
			}
			if n := countCustomers(t, e, admin, "panic@example.org"); n != tc.created {
				t.Fatalf("the request that panicked left %d customers, want %d", n, tc.created)
			}

			retryOfUnknownOutcome(t, e, admin, "/customers", body, "panic-key")
			if n := countCustomers(t, e, admin, "panic@example.org"); n != tc.created {
				t.Errorf("the retry left %d customers, want %d", n, tc.created)
			}
			if tc.created == 0 {
				res, data = e.raw(http.MethodPost, "/customers", admin.token, "application/json", body, "Idempotency-Key", "another-key")
				if res.StatusCode != http.StatusCreated {
					t.Errorf("with a new key: %d %s", res.StatusCode, data)
				}
			}
		})
	}
}

// A key whose first request never recorded its outcome — its process died
// between claiming the key and storing the response — is never run again
// (the record may exist); once the request is clearly over, its retries are
// told so at once.
func TestIdempotencyKeyAbandonedByACrash(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Crash Site")
	body := fmt.Sprintf(`{"customer_id":%q,"type":"Call","description":"before the crash"}`, c.Id)
	res, data := e.raw(http.MethodPost, "/interactions", admin.token, "application/json", body, "Idempotency-Key", "crashed")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("first: %d %s", res.StatusCode, data)
	}
	// Turn its record back into the pending claim the dead process left, an
	// hour ago.
	claimed := time.Now().Add(-time.Hour).UTC()
	updateRaw(t, rawDB(t, e), "idempotency_keys", bson.D{{Key: "headers.Location", Value: res.Header.Get("Location")}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "state", Value: "pending"}, {Key: "created_at", Value: claimed}, {Key: "expires_at", Value: claimed.Add(24 * time.Hour)}}},
		{Key: "$unset", Value: bson.D{{Key: "status", Value: ""}, {Key: "headers", Value: ""}, {Key: "body", Value: ""}}}})

	retryOfUnknownOutcome(t, e, admin, "/interactions", body, "crashed")
	res, data = e.raw(http.MethodGet, "/customers/"+c.Id+"/interactions", admin.token, "", "")
	var page gen.InteractionList
	if err := json.Unmarshal(data, &page); err != nil || res.StatusCode != http.StatusOK || len(page.Data) != 1 {
		t.Errorf("the customer's interactions after the retry: %d %s, want the one created", res.StatusCode, data)
	}
}

// retryOfUnknownOutcome retries a create whose first request's outcome is
// unknown, and checks that it is told so at once: a 409 saying so, without
// waiting for a request that is over.
func retryOfUnknownOutcome(t *testing.T, e *env, u user, path, body, key string) {
	t.Helper()
	start := time.Now()
	res, data := e.raw(http.MethodPost, path, u.token, "application/json", body, "Idempotency-Key", key)
	if p := wantProblem(t, http.StatusConflict, data, res.StatusCode, "conflict"); !strings.Contains(deref(p.Detail), "unknown") {
		t.Errorf("retry: %s, want it to say the outcome is unknown", data)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the retry took %s: it waited for a request that is over", took)
	}
}

func TestDeleteCustomerWithInteractions(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Referenced Customer")
	var ids []string
	for range 4 {
		ids = append(ids, e.interaction(admin, c, gen.InteractionTypeNote).Id)
	}

	res, body := e.raw(http.MethodDelete, "/customers/"+c.Id, admin.token, "", "")
	wantProblem(t, http.StatusConflict, body, res.StatusCode, "conflict")
	if res, _ := e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("a refused delete removed the customer: %d", res.StatusCode)
	}
	// The refused delete left no trace: new interactions can still be recorded.
	e.interaction(admin, c, gen.InteractionTypeCall)

	// A cascade interrupted half-way: the customer marked as being deleted and
	// half of its interactions gone. Sending the request again finishes it.
	raw := rawDB(t, e)
	cid, _ := bson.ObjectIDFromHex(c.Id)
	if _, err := raw.Collection("customers").UpdateOne(context.Background(), bson.D{{Key: "_id", Value: cid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "deleting_at", Value: time.Now()}}}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:2] {
		oid, _ := bson.ObjectIDFromHex(id)
		if _, err := raw.Collection("interactions").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: oid}}); err != nil {
			t.Fatal(err)
		}
	}
	res, body = e.raw(http.MethodDelete, "/customers/"+c.Id+"?cascade=true", admin.token, "", "")
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("cascade: %d %s", res.StatusCode, body)
	}
	for _, id := range ids {
		if res, _ := e.raw(http.MethodGet, "/interactions/"+id, admin.token, "", ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("interaction %s survived the cascade: %d", id, res.StatusCode)
		}
	}
	if n, err := raw.Collection("interactions").CountDocuments(context.Background(), bson.D{{Key: "customer_id", Value: cid}}); err != nil || n != 0 {
		t.Errorf("%d interactions of the deleted customer remain (%v)", n, err)
	}
}

func TestDeleteUserWhoOwnsRecords(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	bob := e.addUser(admin, "Bob Member", gen.Member)
	c := e.customer(bob, "Bobs Customer")

	res, body := e.raw(http.MethodDelete, "/users/"+bob.Id, admin.token, "", "")
	wantProblem(t, http.StatusConflict, body, res.StatusCode, "conflict")

	// Deactivating is the way: it ends Bob's access.
	res, body = e.raw(http.MethodPatch, "/users/"+bob.Id, admin.token, "application/json", `{"status":"inactive"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("deactivate: %d %s", res.StatusCode, body)
	}
	if res, _ := e.raw(http.MethodGet, "/customers", bob.token, "", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deactivated user's token still works: %d", res.StatusCode)
	}

	// Once Bob owns nothing, he can be deleted.
	res, _ = e.raw(http.MethodPatch, "/customers/"+c.Id, admin.token, "application/json", fmt.Sprintf(`{"owner_id":%q}`, admin.Id))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("reassign: %d", res.StatusCode)
	}
	res, body = e.raw(http.MethodDelete, "/users/"+bob.Id, admin.token, "", "")
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("delete after reassigning: %d %s", res.StatusCode, body)
	}
}

func TestLastAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	for _, tc := range []struct{ method, body string }{
		{http.MethodPatch, `{"role":"member"}`},
		{http.MethodPatch, `{"status":"inactive"}`},
		{http.MethodDelete, ``},
	} {
		ct := ""
		if tc.body != "" {
			ct = "application/json"
		}
		res, body := e.raw(tc.method, "/users/"+admin.Id, admin.token, ct, tc.body)
		wantProblem(t, http.StatusConflict, body, res.StatusCode, "conflict")
	}
	second := e.addUser(admin, "Second Admin", gen.Admin)
	res, body := e.raw(http.MethodPatch, "/users/"+admin.Id, second.token, "application/json", `{"role":"member"}`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("demote with another admin present: %d %s", res.StatusCode, body)
	}
}

// retryUnavailable sends a request again while it is answered 503, as a client
// should: a database slowed down by the test's own contention (PostgreSQL under
// the bundled engine, on a loaded machine) may time out, and says so — that is
// no write lost silently.
func retryUnavailable(send func() *http.Response) *http.Response {
	res := send()
	for range 5 {
		if res.StatusCode != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
		res = send()
	}
	return res
}

// rawDB connects to the test server's embedded engine directly, for tests that
// must shape the database by hand.
func rawDB(t *testing.T, e *env) *mongo.Database {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(e.dbURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(e.dbName)
}

// countCustomers counts the customers whose email contains email.
func countCustomers(t *testing.T, e *env, u user, email string) int {
	t.Helper()
	res, err := e.as(u.token).ListCustomersWithResponse(context.Background(), &gen.ListCustomersParams{Q: &email, Limit: ptr(200)})
	mustStatus(t, res, err, http.StatusOK)
	n := 0
	for _, c := range res.JSON200.Data {
		if strings.EqualFold(c.Email, email) {
			n++
		}
	}
	return n
}

// A write that would change nothing changes nothing: the record keeps its
// ETag and updated_at, so that a client syncing by updated_since does not
// read its own no-op writes back as news. A real change still moves both.
func TestWritesThatChangeNothing(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	type state struct{ etag, updatedAt string }
	send := func(method, path, body string) state {
		t.Helper()
		res, data := e.raw(method, path, admin.token, "application/json", body)
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
			t.Fatalf("%s %s %s: %d %s", method, path, body, res.StatusCode, data)
		}
		var m struct {
			ID        string `json:"id"`
			UpdatedAt string `json:"updated_at"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return state{res.Header.Get("ETag"), m.UpdatedAt}
	}
	created, err := e.as(admin.token).CreateCustomerWithResponse(context.Background(), nil, gen.CreateCustomerJSONRequestBody{
		Name: "Same", Email: "same@example.org", Company: ptr("Acme"), Tags: &[]string{"a", "b"},
	})
	mustStatus(t, created, err, http.StatusCreated)
	customer := "/customers/" + created.JSON201.Id
	it, err := e.as(admin.token).CreateInteractionWithResponse(context.Background(), nil, gen.CreateInteractionJSONRequestBody{
		CustomerId: created.JSON201.Id, Type: gen.InteractionTypeCall, ScheduledAt: ptr(time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)),
	})
	mustStatus(t, it, err, http.StatusCreated)
	interaction := "/interactions/" + it.JSON201.Id
	time.Sleep(5 * time.Millisecond) // a write now would show in updated_at

	for _, tc := range []struct{ what, method, path, body string }{
		{"customer, the same fields", http.MethodPatch, customer, `{"name":"Same","email":"SAME@example.org","company":"Acme","tags":["a","b"],"owner_id":"` + admin.Id + `"}`},
		{"customer, the same whole record", http.MethodPut, customer, `{"name":"Same","email":"same@example.org","company":"Acme","status":"active","tags":["a","b"]}`},
		{"interaction, the same time to the nanosecond", http.MethodPatch, interaction, `{"type":"Call","scheduled_at":"2030-01-02T03:04:05.123456789Z"}`},
		{"own user, the same name", http.MethodPatch, "/users/" + admin.Id, `{"name":"` + admin.Name + `"}`},
	} {
		before := send(http.MethodGet, tc.path, "")
		if after := send(tc.method, tc.path, tc.body); after != before {
			t.Errorf("%s: %s changed ETag/updated_at from %v to %v", tc.what, tc.method, before, after)
		}
	}

	before := send(http.MethodGet, customer, "")
	if after := send(http.MethodPatch, customer, `{"company":"Other"}`); after.etag == before.etag || after.updatedAt == before.updatedAt {
		t.Errorf("a real change kept ETag/updated_at %v", before)
	}
}
