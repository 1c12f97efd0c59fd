package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencrm/crm/gen"
)

// awkward are strings that encoding/json escapes or repairs.
var awkward = []string{
	"", "Grace Hopper", `quote " and backslash \`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "josé 日本 🎉", "line\u2028para\u2029", "bad \xff\xfe utf-8", "\xe2\x82", "trailing \\",
}

// encodingJSON is what the generated response writer sends: json.Encoder's
// output for v.
func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

// TestRecordJSONIsEncodingJSONs checks that the answers of the lookups by id
// are, byte for byte, what encoding/json writes for their gen types: with
// every field set (a field added to a gen type and not to its appender fails
// here), with the optional ones absent, and with text that needs escapes.
func TestRecordJSONIsEncodingJSONs(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 123_000_000, time.UTC)
	whole := time.Date(1999, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, text := range awkward[1:] {
		full := map[string]any{
			"customer": gen.Customer{Id: "6553f1a2c8e4b2a1d0f00002", Name: text, Email: text, Phone: ptr(text), Company: ptr(text),
				Status: gen.CustomerStatusActive, Notes: ptr(text), Tags: []string{text, "vip"}, OwnerId: ptr("6553f1a2c8e4b2a1d0f00003"),
				CreatedAt: at, UpdatedAt: whole},
			"interaction": gen.Interaction{Id: "6553f1a2c8e4b2a1d0f00002", UserId: "6553f1a2c8e4b2a1d0f00003", CustomerId: "6553f1a2c8e4b2a1d0f00004",
				Type: gen.InteractionTypeCall, Description: ptr(text), Status: gen.Open, ScheduledAt: ptr(time.Time{}),
				CreatedAt: at, UpdatedAt: whole},
			"user": gen.User{Id: "6553f1a2c8e4b2a1d0f00002", Name: text, Email: text, Company: ptr(text), Status: gen.UserStatusActive,
				Role: gen.Admin, CreatedAt: at, UpdatedAt: whole},
		}
		for kind, record := range full {
			v := reflect.ValueOf(record)
			for i := range v.NumField() {
				if v.Field(i).IsZero() {
					t.Fatalf("the %s sample leaves %s unset: set every field, so that the appender is checked on it", kind, v.Type().Field(i).Name)
				}
			}
			checkRecordJSON(t, record)
		}
	}
	// Optional fields absent, tags empty and nil (written null, as
	// encoding/json writes a nil slice).
	for _, record := range []any{
		gen.Customer{Id: "6553f1a2c8e4b2a1d0f00002", Name: "N", Email: "n@example.com", Status: gen.CustomerStatusInactive, Tags: []string{}, CreatedAt: at, UpdatedAt: at},
		gen.Customer{Id: "6553f1a2c8e4b2a1d0f00002", Name: "N", Email: "n@example.com", Status: gen.CustomerStatusInactive, CreatedAt: at, UpdatedAt: at},
		gen.Interaction{Id: "6553f1a2c8e4b2a1d0f00002", Type: gen.InteractionTypeNote, Status: gen.Resolved, CreatedAt: at, UpdatedAt: at},
		gen.User{Id: "6553f1a2c8e4b2a1d0f00002", Name: "N", Email: "n@example.com", Status: gen.UserStatusInactive, Role: gen.Member},
	} {
		checkRecordJSON(t, record)
	}
	// A time that RFC 3339 cannot write fails as it does in encoding/json.
	if _, err := userJSON(gen.User{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("a user created in the year 10000 was written without an error")
	}
}

func checkRecordJSON(t *testing.T, record any) {
	t.Helper()
	var got []byte
	var err error
	switch r := record.(type) {
	case gen.Customer:
		got, err = customerJSON(r)
	case gen.Interaction:
		got, err = interactionJSON(r)
	case gen.User:
		got, err = userJSON(r)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := encodingJSON(t, record); !bytes.Equal(got, want) {
		t.Errorf("%T:\n got %s\nwant %s", record, strings.TrimSpace(string(got)), strings.TrimSpace(string(want)))
	}
}
