package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/opencrm/crm/gen"
)

// Compatibility with databases that the original CRM wrote: documents without
// created_at/updated_at/revision, with extra legacy fields (contact_info, notes)
// and the old role names, inserted raw with the driver, are listed, read,
// updated and deleted through the API without errors — and every answer still
// matches the spec.

func TestOriginalCRMDocuments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	db := rawDB(t, e)

	hash, err := bcrypt.GenerateFromPassword([]byte("legacy password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	e.check.secret("legacy password")
	adminID, memberID, customerID, interactionID := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	mustInsert := func(coll string, doc bson.D) {
		t.Helper()
		if _, err := db.Collection(coll).InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	mustInsert("users", bson.D{
		{Key: "_id", Value: adminID}, {Key: "name", Value: "Old Admin"}, {Key: "email", Value: "old.admin@example.com"},
		{Key: "password", Value: string(hash)}, {Key: "company", Value: "Old Co"}, {Key: "role", Value: "Admin"},
		{Key: "contact_info", Value: bson.D{{Key: "phone", Value: "123"}}}, {Key: "notes", Value: "from the old CRM"},
	})
	mustInsert("users", bson.D{
		{Key: "_id", Value: memberID}, {Key: "name", Value: "Old Member"}, {Key: "email", Value: "old.member@example.com"},
		{Key: "password", Value: string(hash)}, {Key: "role", Value: "User"},
	})
	mustInsert("customers", bson.D{
		{Key: "_id", Value: customerID}, {Key: "name", Value: "Old Customer"}, {Key: "email", Value: "old.customer@example.org"},
		{Key: "phone", Value: "+1 555 0123"}, {Key: "company", Value: "Legacy Ltd"},
		{Key: "contact_info", Value: bson.D{{Key: "address", Value: "1 Old Street"}}}, {Key: "notes", Value: "kept"},
	})
	mustInsert("interactions", bson.D{
		{Key: "_id", Value: interactionID}, {Key: "user_id", Value: memberID}, {Key: "customer_id", Value: customerID},
		{Key: "type", Value: "Meeting"}, {Key: "description", Value: "first meeting"}, {Key: "status", Value: "Open"},
		{Key: "scheduled_at", Value: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
	})

	// The old admin signs in with the old bcrypt hash, which is upgraded,
	// and nothing else: a sign-in is not an edit of the user.
	type version struct {
		Password  string    `bson:"password"`
		Revision  int64     `bson:"revision"`
		UpdatedAt time.Time `bson:"updated_at"`
	}
	var before, stored version
	if err := db.Collection("users").FindOne(ctx, bson.D{{Key: "_id", Value: adminID}}).Decode(&before); err != nil {
		t.Fatal(err)
	}
	token := e.login("OLD.ADMIN@example.com", "legacy password")
	if err := db.Collection("users").FindOne(ctx, bson.D{{Key: "_id", Value: adminID}}).Decode(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.Password, "$argon2id$") {
		t.Errorf("the bcrypt hash was not upgraded on login: %.10s…", stored.Password)
	}
	if stored.Revision != before.Revision || !stored.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("upgrading the hash changed the user: revision %d → %d, updated_at %s → %s",
			before.Revision, stored.Revision, before.UpdatedAt, stored.UpdatedAt)
	}
	e.login("old.admin@example.com", "legacy password") // and the new hash verifies
	c := e.as(token)

	me, err := c.GetCurrentUserWithResponse(ctx, nil)
	mustStatus(t, me, err, http.StatusOK)
	if me.JSON200.Role != gen.Admin || me.JSON200.Status != gen.UserStatusActive || !me.JSON200.CreatedAt.Equal(adminID.Timestamp()) {
		t.Errorf("legacy admin reads as %+v", me.JSON200)
	}

	users, err := c.ListUsersWithResponse(ctx, &gen.ListUsersParams{Role: ptr(gen.Member)})
	mustStatus(t, users, err, http.StatusOK)
	if len(users.JSON200.Data) != 1 || users.JSON200.Data[0].Id != memberID.Hex() {
		t.Errorf("members: %s", users.Body)
	}
	customers, err := c.ListCustomersWithResponse(ctx, nil)
	mustStatus(t, customers, err, http.StatusOK)
	if len(customers.JSON200.Data) != 1 || customers.JSON200.Data[0].Status != gen.CustomerStatusActive {
		t.Errorf("customers: %s", customers.Body)
	}
	timeline, err := c.ListCustomerInteractionsWithResponse(ctx, customerID.Hex(), nil)
	mustStatus(t, timeline, err, http.StatusOK)
	if len(timeline.JSON200.Data) != 1 || timeline.JSON200.Data[0].Id != interactionID.Hex() {
		t.Errorf("timeline: %s", timeline.Body)
	}
	legacy, err := c.ListInteractionsByCustomerLegacyWithResponse(ctx, customerID.Hex(), nil)
	mustStatus(t, legacy, err, http.StatusOK)

	// A legacy record is at version 0 and updates like any other, keeping the
	// fields the API does not know.
	got, err := c.GetCustomerWithResponse(ctx, customerID.Hex(), nil)
	mustStatus(t, got, err, http.StatusOK)
	if tag := got.HTTPResponse.Header.Get("ETag"); tag != `"0"` {
		t.Errorf("legacy customer ETag %s, want \"0\"", tag)
	}
	res, body := e.raw(http.MethodPatch, "/customers/"+customerID.Hex(), token, "application/merge-patch+json", `{"status":"inactive"}`, "If-Match", `"0"`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("patch legacy customer: %d %s", res.StatusCode, body)
	}
	var after bson.M
	if err := db.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: customerID}}).Decode(&after); err != nil {
		t.Fatal(err)
	}
	if after["contact_info"] == nil || after["notes"] != "kept" || after["status"] != "inactive" {
		t.Errorf("after PATCH the stored customer is %v", after)
	}
	res, body = e.raw(http.MethodPut, "/interactions/"+interactionID.Hex(), token, "application/json",
		fmt.Sprintf(`{"user_id":%q,"customer_id":%q,"type":"Call","status":"Resolved"}`, memberID.Hex(), customerID.Hex()))
	if res.StatusCode != http.StatusOK {
		t.Errorf("PUT legacy interaction: %d %s", res.StatusCode, body)
	}
	res, body = e.raw(http.MethodPatch, "/users/"+memberID.Hex(), token, "application/json", `{"company":"New Co"}`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("PATCH legacy user: %d %s", res.StatusCode, body)
	}

	// And they delete: the interaction, then the customer, then the member.
	for _, path := range []string{"/interactions/" + interactionID.Hex(), "/customers/" + customerID.Hex(), "/users/" + memberID.Hex()} {
		res, body := e.raw(http.MethodDelete, path, token, "", "")
		if res.StatusCode != http.StatusNoContent {
			t.Errorf("DELETE %s: %d %s", path, res.StatusCode, body)
		}
	}
}
