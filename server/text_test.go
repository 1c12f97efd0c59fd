package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/opencrm/crm/gen"
)

// textWorld is a server holding one record of each kind, for tests that
// send text each of them must refuse, and then check that nothing changed.
type textWorld struct {
	e             *env
	db            *mongo.Database
	admin, member user
	grace         gen.Customer
	call          gen.Interaction
	before        hostileSnapshot
}

func newTextWorld(t *testing.T) *textWorld {
	w := &textWorld{e: newEnv(t)}
	w.db = rawDB(t, w.e)
	w.admin = w.e.bootstrap()
	w.member = w.e.addUser(w.admin, "Bob Member", gen.Member)
	w.grace = w.e.customer(w.admin, "Grace Hopper")
	w.call = w.e.interaction(w.admin, w.grace, gen.InteractionTypeCall)
	w.before = hostileSnapshotOf(t, w.db)
	return w
}

// unchanged fails t if the database differs from when the world was made.
func (w *textWorld) unchanged(t *testing.T) {
	t.Helper()
	if d := w.before.diff(hostileSnapshotOf(t, w.db)); d != "" {
		t.Errorf("refused requests changed the database: %s", d)
	}
}

// TestBodyTextIsStorable checks the text of bodies that the schema's types
// let through but that cannot be stored as sent: NUL characters, bytes that
// are not UTF-8 (which Go's decoder would turn into U+FFFD), and names or
// tags made only of spaces that the validator's regular expressions do not
// count as spaces, and date-times of the right form that are no time of day
// (a leap second). Each is a 400 naming the member, and changes nothing.
func TestBodyTextIsStorable(t *testing.T) {
	t.Parallel()
	w := newTextWorld(t)
	e, admin, member, grace, call := w.e, w.admin, w.member, w.grace, w.call

	cases := []struct {
		name, method, path, contentType, body, pointer string
	}{
		{"NUL in a name", http.MethodPost, "/customers", "application/json", `{"name":"a\u0000b","email":"nul@example.com"}`, "/name"},
		{"NUL in notes", http.MethodPost, "/customers", "application/json", `{"name":"Ada","email":"nul@example.com","notes":"x\u0000"}`, "/notes"},
		{"NUL in a tag", http.MethodPatch, "/customers/" + grace.Id, "application/merge-patch+json", `{"tags":["ok","x\u0000"]}`, "/tags/1"},
		{"NUL in a member's name", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"na\u0000me":"Ada"}`, "/na\x00me"},
		{"NUL in a user's password", http.MethodPost, "/users", "application/json", `{"name":"X","email":"x@example.com","password":"long enough\u0000"}`, "/password"},
		{"bytes that are not UTF-8", http.MethodPost, "/customers", "application/json", "{\"name\":\"\xff\xfe\",\"email\":\"bytes@example.com\"}", "/name"},
		{"a lone surrogate escape", http.MethodPost, "/customers", "application/json", `{"name":"Ada \ud800","email":"surrogate@example.com"}`, "/name"},
		{"a lone low surrogate in a tag", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"tags":["ok","\udc00"]}`, "/tags/1"},
		{"not UTF-8 in notes", http.MethodPatch, "/customers/" + grace.Id, "application/json", "{\"notes\":\"caf\xe9\"}", "/notes"},
		{"a customer's name of U+00A0", http.MethodPost, "/customers", "application/json", `{"name":"\u00a0","email":"nbsp@example.com"}`, "/name"},
		{"a customer's name of U+3000 U+2003", http.MethodPut, "/customers/" + grace.Id, "application/json", `{"name":"\u3000\u2003","email":"grace.hopper@example.org","status":"active"}`, "/name"},
		{"a customer's name patched to U+00A0", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"name":"\u00a0"}`, "/name"},
		{"a tag of U+00A0", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"tags":["vip","\u00a0"]}`, "/tags/1"},
		{"a new tag of U+2003", http.MethodPost, "/customers", "application/json", `{"name":"Ada","email":"ada@example.com","tags":["\u2003"]}`, "/tags/0"},
		{"a user's name of U+00A0", http.MethodPost, "/users", "application/json", `{"name":"\u00a0","email":"x@example.com","password":"long enough password"}`, "/name"},
		{"a user's name patched to U+3000", http.MethodPatch, "/users/" + member.Id, "application/json", `{"name":"\u3000"}`, "/name"},
		{"an email with U+00A0", http.MethodPost, "/customers", "application/json", `{"name":"Ada","email":"ada\u00a0@example.com"}`, "/email"},
		{"a user's email with U+2003", http.MethodPatch, "/users/" + member.Id, "application/json", `{"email":"bob\u2003member@example.com"}`, "/email"},
		{"a leap second", http.MethodPost, "/interactions", "application/json", `{"customer_id":"` + grace.Id + `","type":"Call","scheduled_at":"2016-12-31T23:59:60Z"}`, "/scheduled_at"},
		{"hour 24", http.MethodPost, "/interactions", "application/json", `{"customer_id":"` + grace.Id + `","type":"Call","scheduled_at":"2026-11-26T24:00:00Z"}`, "/scheduled_at"},
		{"year -1 in UTC", http.MethodPost, "/interactions", "application/json", `{"customer_id":"` + grace.Id + `","type":"Call","scheduled_at":"0000-01-01T00:00:00+23:59"}`, "/scheduled_at"},
		{"year 10000 in UTC", http.MethodPatch, "/interactions/" + call.Id, "application/json", `{"scheduled_at":"9999-12-31T23:30:00-01:00"}`, "/scheduled_at"},
		{"a name of zero-width characters", http.MethodPost, "/customers", "application/json", `{"name":"\u200b\u200d\u200c","email":"zw@example.com"}`, "/name"},
		{"a user's name of a byte-order mark", http.MethodPatch, "/users/" + member.Id, "application/json", `{"name":"\ufeff"}`, "/name"},
		{"a company of spaces", http.MethodPost, "/customers", "application/json", `{"name":"Ada","email":"co@example.com","company":"   "}`, "/company"},
		{"a user's company of spaces", http.MethodPatch, "/users/" + member.Id, "application/json", `{"company":" \u00a0"}`, "/company"},
		// Unicode's other default-ignorable characters show as nothing too.
		{"a name of a Hangul filler", http.MethodPost, "/customers", "application/json", `{"name":"\u3164","email":"filler@example.com"}`, "/name"},
		{"a tag of a Hangul filler", http.MethodPost, "/customers", "application/json", `{"name":"Ada","email":"filler@example.com","tags":["\u3164"]}`, "/tags/0"},
		{"a name of Hangul choseong and jungseong fillers", http.MethodPut, "/customers/" + grace.Id, "application/json", `{"name":"\u115f\u1160","email":"grace.hopper@example.org","status":"active"}`, "/name"},
		{"a user's name of a combining grapheme joiner", http.MethodPatch, "/users/" + member.Id, "application/json", `{"name":"\u034f"}`, "/name"},
		{"a company of U+17B4", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"company":"\u17b4"}`, "/company"},
		{"notes of variation selectors", http.MethodPatch, "/customers/" + grace.Id, "application/json", `{"notes":"\ufe0e\ufe0f"}`, "/notes"},
		{"a description of a halfwidth Hangul filler", http.MethodPatch, "/interactions/" + call.Id, "application/json", `{"description":"\uffa0"}`, "/description"},
		{"a name of control characters", http.MethodPost, "/users", "application/json", `{"name":"\u0001\u007f","email":"cc@example.com","password":"long enough password"}`, "/name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.raw(tc.method, tc.path, admin.token, tc.contentType, tc.body)
			wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.pointer)
		})
	}
	// Every blank member is named at once.
	res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
		`{"name":"\u200b","email":"blanks@example.com","phone":" ","notes":"\u3000","tags":["a","\u00a0"]}`)
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", "/name", "/phone", "/notes", "/tags/1")
	// A merge patch, like any JSON body, is one JSON value and nothing after.
	res, body = e.raw(http.MethodPatch, "/customers/"+grace.Id, admin.token, "application/merge-patch+json", `{"name":"A"} {"name":"B"}`)
	wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "malformed-body")
	w.unchanged(t)

	// Text that is storable still is: a real U+FFFD in valid UTF-8, spaces
	// around a name, and non-ASCII letters.
	res, body = e.raw(http.MethodPost, "/customers", admin.token, "application/json",
		`{"name":"\u00a0Zoë \ufffd\u3000","email":"zoe@example.com","tags":[" naïve ","\ud83d\ude00"]}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("storable text: %d %s", res.StatusCode, body)
	}
	var c gen.Customer
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "Zoë \ufffd" || len(c.Tags) != 2 || c.Tags[0] != "naïve" || c.Tags[1] != "😀" {
		t.Errorf("stored name %q and tags %v", c.Name, c.Tags)
	}

	// Text is stored composed (NFC): a tag sent in both forms is one tag, and
	// a filter in either form finds it.
	res, body = e.raw(http.MethodPost, "/customers", admin.token, "application/json",
		`{"name":"Rene\u0301e","email":"renee@example.com","tags":["caf\u00e9","cafe\u0301"]}`)
	if err := json.Unmarshal(body, &c); res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("tags in two forms: %d %s", res.StatusCode, body)
	}
	if c.Name != "Ren\u00e9e" || len(c.Tags) != 1 || c.Tags[0] != "caf\u00e9" {
		t.Errorf("stored name %q and tags %q, want them composed and one tag", c.Name, c.Tags)
	}
	for _, tag := range []string{"caf%C3%A9", "cafe%CC%81"} {
		res, body = e.raw(http.MethodGet, "/customers?tag="+tag, admin.token, "", "")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), c.Id) {
			t.Errorf("tag=%s: %d %s", tag, res.StatusCode, body)
		}
	}
}

// TestManyInvalidFieldsAreCounted checks that a problem lists at most 50
// fields and counts them all: a 1 MiB body of unknown members must not be
// answered with megabytes, least of all on the operations that need no token.
func TestManyInvalidFieldsAreCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bootstrap()
	members := make([]string, 0, 2000)
	for i := range cap(members) {
		members = append(members, fmt.Sprintf(`"unknown%d":1`, i))
	}
	body := `{"email":"a@example.com","password":"x",` + strings.Join(members, ",") + "}"
	for _, path := range []string{"/users/login", "/auth/refresh"} {
		res, raw := e.raw(http.MethodPost, path, "", "application/json", body)
		p := wantProblem(t, http.StatusBadRequest, raw, res.StatusCode, "invalid-input")
		if p.Errors == nil || len(*p.Errors) != 50 {
			t.Errorf("%s: %d fields listed, want 50", path, len(deref(p.Errors)))
		}
		// 2,000 unknown members, and for /auth/refresh the two login members
		// it does not know either and the refresh_token it lacks.
		want := map[string]string{"/users/login": "2000", "/auth/refresh": "2003"}[path]
		if p.Detail == nil || *p.Detail != "The request has "+want+" invalid fields." || len(raw) > 16<<10 {
			t.Errorf("%s: %d bytes, detail %q, want the count %s", path, len(raw), deref(p.Detail), want)
		}
	}
}

// TestTextLongerOnceComposed checks text that fits the spec's maxLength as
// sent but not once composed (NFC), as it is stored: U+0958 becomes U+0915
// U+093C, two characters. Stored, it broke the spec in every answer, and the
// record sent back as read was refused. Each is a 400 naming the member, and
// changes nothing; text that fits once composed is stored.
func TestTextLongerOnceComposed(t *testing.T) {
	t.Parallel()
	w := newTextWorld(t)
	e, admin, member, grace, call := w.e, w.admin, w.member, w.grace, w.call

	qa := func(n int) string { return strings.Repeat("\u0958", n) } // 2n characters once composed
	email := qa(240) + "@example.com"                               // 252 characters, 492 composed
	ids := `"user_id":"` + admin.Id + `","customer_id":"` + grace.Id + `"`
	cases := []struct {
		name, method, path, body string
		pointers                 []string
	}{
		{"a customer's name", http.MethodPost, "/customers", `{"name":"` + qa(200) + `","email":"qa@example.com"}`, []string{"/name"}},
		{"a customer's tag", http.MethodPost, "/customers", `{"name":"Ada","email":"qa@example.com","tags":["ok","` + qa(50) + `"]}`, []string{"/tags/1"}},
		{"a customer's company and notes", http.MethodPost, "/customers", `{"name":"Ada","email":"qa@example.com","company":"` + qa(101) + `","notes":"` + qa(5001) + `"}`, []string{"/company", "/notes"}},
		{"a customer's email", http.MethodPost, "/customers", `{"name":"Ada","email":"` + email + `"}`, []string{"/email"}},
		{"a customer's name and email at once", http.MethodPost, "/customers", `{"name":"` + qa(101) + `","email":"` + email + `"}`, []string{"/name", "/email"}},
		{"a customer's name replaced", http.MethodPut, "/customers/" + grace.Id, `{"name":"` + qa(200) + `","email":"grace.hopper@example.org","status":"active"}`, []string{"/name"}},
		{"a customer's email replaced", http.MethodPut, "/customers/" + grace.Id, `{"name":"Grace","email":"` + email + `","status":"active","tags":["` + qa(26) + `"]}`, []string{"/email", "/tags/0"}},
		{"a customer's tags patched", http.MethodPatch, "/customers/" + grace.Id, `{"tags":["` + qa(50) + `"]}`, []string{"/tags/0"}},
		{"a customer's company patched", http.MethodPatch, "/customers/" + grace.Id, `{"company":"` + qa(200) + `"}`, []string{"/company"}},
		{"a customer's notes patched", http.MethodPatch, "/customers/" + grace.Id, `{"notes":"` + qa(10000) + `"}`, []string{"/notes"}},
		{"a customer's email patched", http.MethodPatch, "/customers/" + grace.Id, `{"email":"` + email + `"}`, []string{"/email"}},
		{"a user's name", http.MethodPost, "/users", `{"name":"` + qa(200) + `","email":"qa@example.com","password":"long enough password"}`, []string{"/name"}},
		{"a user's email", http.MethodPost, "/users", `{"name":"Qa","email":"` + email + `","password":"long enough password"}`, []string{"/email"}},
		{"a user's company replaced", http.MethodPut, "/users/" + member.Id, `{"name":"Bob","email":"bob.member@example.com","company":"` + qa(200) + `","role":"member","status":"active"}`, []string{"/company"}},
		{"a user's name patched", http.MethodPatch, "/users/" + member.Id, `{"name":"` + qa(101) + `"}`, []string{"/name"}},
		{"a user's email patched", http.MethodPatch, "/users/" + member.Id, `{"email":"` + email + `"}`, []string{"/email"}},
		{"a description", http.MethodPost, "/interactions", `{"customer_id":"` + grace.Id + `","type":"Call","description":"` + qa(10000) + `"}`, []string{"/description"}},
		{"a description replaced", http.MethodPut, "/interactions/" + call.Id, `{` + ids + `,"type":"Call","status":"Open","description":"` + qa(5001) + `"}`, []string{"/description"}},
		{"a description patched", http.MethodPatch, "/interactions/" + call.Id, `{"description":"` + qa(5001) + `"}`, []string{"/description"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, body := e.raw(tc.method, tc.path, admin.token, "application/json", tc.body)
			p := wantProblem(t, http.StatusBadRequest, body, res.StatusCode, "invalid-input", tc.pointers...)
			if errs := deref(p.Errors); len(errs) == 0 || !strings.Contains(errs[0].Detail, "characters once composed") {
				t.Errorf("problem %s, want it to say why", body)
			}
		})
	}
	w.unchanged(t)

	// At the limit once composed is stored, and the record as read can be
	// sent back.
	res, body := e.raw(http.MethodPost, "/customers", admin.token, "application/json",
		`{"name":"`+qa(100)+`","email":"`+qa(121)+`@example.com","company":"`+qa(100)+`","tags":["`+qa(25)+`","\u2764\ufe0f"]}`)
	var c gen.Customer
	if err := json.Unmarshal(body, &c); res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("text at the limit once composed: %d %s", res.StatusCode, body)
	}
	if n := utf8.RuneCountInString(c.Name); n != 200 || len(c.Tags) != 2 || utf8.RuneCountInString(c.Tags[0]) != 50 || c.Tags[1] != "\u2764\ufe0f" {
		t.Errorf("stored a name of %d characters and tags %q", n, c.Tags)
	}
	replace, _ := json.Marshal(gen.CustomerReplace{Name: c.Name, Email: c.Email, Company: c.Company, Status: c.Status, Tags: &c.Tags})
	res, body = e.raw(http.MethodPut, "/customers/"+c.Id, admin.token, "application/json", string(replace))
	if res.StatusCode != http.StatusOK {
		t.Errorf("the customer sent back as read: %d %s", res.StatusCode, body)
	}
}

// TestInteractionScheduledAtGoZeroTime checks that 0001-01-01T00:00:00Z, Go's
// zero time and a time the spec accepts, is stored like any other: it was
// dropped on create (answered, then gone) and taken for "clear" by PUT and
// PATCH. Lists filter and sort it as a time, after the interactions without one.
func TestInteractionScheduledAtGoZeroTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.bootstrap()
	grace := e.customer(admin, "Grace Hopper")
	unscheduled := e.interaction(admin, grace, gen.InteractionTypeNote)
	read := func(method, path, body string) gen.Interaction {
		t.Helper()
		res, raw := e.raw(method, path, admin.token, "application/json", body)
		var it gen.Interaction
		if err := json.Unmarshal(raw, &it); res.StatusCode >= 300 || err != nil {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		return it
	}
	atZero := func(it gen.Interaction) bool { return it.ScheduledAt != nil && it.ScheduledAt.IsZero() }

	created := read(http.MethodPost, "/interactions", `{"customer_id":"`+grace.Id+`","type":"Call","scheduled_at":"0001-01-01T00:00:00Z"}`)
	if got := read(http.MethodGet, "/interactions/"+created.Id, ""); !atZero(created) || !atZero(got) {
		t.Errorf("created at the zero time: answered %v, read back %v", created.ScheduledAt, got.ScheduledAt)
	}
	// The same instant in another zone, given by PATCH and PUT.
	patched := e.interaction(admin, grace, gen.InteractionTypeMeeting)
	if got := read(http.MethodPatch, "/interactions/"+patched.Id, `{"scheduled_at":"0000-12-31T19:00:00-05:00"}`); !atZero(got) {
		t.Errorf("patched to the zero time: %v", got.ScheduledAt)
	}
	replaced := e.interaction(admin, grace, gen.InteractionTypeTask)
	if got := read(http.MethodPut, "/interactions/"+replaced.Id,
		`{"user_id":"`+admin.Id+`","customer_id":"`+grace.Id+`","type":"Task","status":"Open","scheduled_at":"0001-01-01T00:00:00Z"}`); !atZero(got) {
		t.Errorf("replaced with the zero time: %v", got.ScheduledAt)
	}
	if got := read(http.MethodGet, "/interactions/"+patched.Id, ""); !atZero(got) {
		t.Errorf("patched to the zero time, read back %v", got.ScheduledAt)
	}

	// Sorted by time, those without one come first, then the zero time; the
	// zero time is before 0001-01-01T00:00:00.001Z.
	res, raw := e.raw(http.MethodGet, "/customers/"+grace.Id+"/interactions?sort=scheduled_at", admin.token, "", "")
	var list gen.InteractionList
	if err := json.Unmarshal(raw, &list); res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("list: %d %s", res.StatusCode, raw)
	}
	if len(list.Data) != 4 || list.Data[0].Id != unscheduled.Id || !atZero(list.Data[1]) || !atZero(list.Data[2]) || !atZero(list.Data[3]) {
		t.Errorf("sorted by scheduled_at: %s", raw)
	}
	// A page at a time, the cursor carrying the zero time, in both orders.
	for _, sort := range []string{"scheduled_at", "-scheduled_at"} {
		var ids []string
		for query := "?limit=1&sort=" + sort; ; {
			res, raw := e.raw(http.MethodGet, "/customers/"+grace.Id+"/interactions"+query, admin.token, "", "")
			var page gen.InteractionList
			if err := json.Unmarshal(raw, &page); res.StatusCode != http.StatusOK || err != nil || len(ids) > 4 {
				t.Fatalf("paging by %s: %d %s", sort, res.StatusCode, raw)
			}
			for _, it := range page.Data {
				ids = append(ids, it.Id)
			}
			next, err := page.NextCursor.Get()
			if err != nil || next == "" {
				break
			}
			query = "?limit=1&sort=" + sort + "&cursor=" + next
		}
		want := []string{list.Data[0].Id, list.Data[1].Id, list.Data[2].Id, list.Data[3].Id}
		if sort == "-scheduled_at" {
			want = []string{want[3], want[2], want[1], want[0]}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("paging by %s: %v, want %v", sort, ids, want)
		}
	}
	res, raw = e.raw(http.MethodGet, "/interactions?customer_id="+grace.Id+"&scheduled_to=0001-01-01T00:00:00.001Z", admin.token, "", "")
	if err := json.Unmarshal(raw, &list); res.StatusCode != http.StatusOK || err != nil || len(list.Data) != 3 {
		t.Errorf("scheduled before 0001-01-01T00:00:00.001Z: %d %s", res.StatusCode, raw)
	}

	// null, or a PUT without the member, still clears it.
	if got := read(http.MethodPatch, "/interactions/"+patched.Id, `{"scheduled_at":null}`); got.ScheduledAt != nil {
		t.Errorf("patched to null: %v", got.ScheduledAt)
	}
	if got := read(http.MethodPut, "/interactions/"+replaced.Id,
		`{"user_id":"`+admin.Id+`","customer_id":"`+grace.Id+`","type":"Task","status":"Open"}`); got.ScheduledAt != nil {
		t.Errorf("replaced without scheduled_at: %v", got.ScheduledAt)
	}
}
