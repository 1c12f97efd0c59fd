package api

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

func customerOut(c *store.Customer) gen.Customer {
	out := gen.Customer{
		Id:        c.ID.Hex(),
		Name:      c.Name,
		Email:     c.Email,
		Phone:     optional(c.Phone),
		Company:   optional(c.Company),
		Status:    gen.CustomerStatus(c.Status),
		Notes:     optional(c.Notes),
		Tags:      c.Tags,
		CreatedAt: c.CreatedAt,
		UpdatedAt: c.UpdatedAt,
	}
	if c.OwnerID != nil {
		out.OwnerId = ptr(c.OwnerID.Hex())
	}
	return out
}

// customerJSON is c as encoding/json writes it, written faster (see json.go).
func customerJSON(c gen.Customer) ([]byte, error) {
	o := newJSONObject()
	o.string("id", c.Id)
	o.string("name", c.Name)
	o.string("email", c.Email)
	o.optionalString("phone", c.Phone)
	o.optionalString("company", c.Company)
	o.string("status", string(c.Status))
	o.optionalString("notes", c.Notes)
	o.strings("tags", c.Tags)
	o.optionalString("owner_id", c.OwnerId)
	o.time("created_at", c.CreatedAt)
	o.time("updated_at", c.UpdatedAt)
	return o.end()
}

// CreateCustomer creates a customer owned by the signed-in user unless owner_id
// names someone else (admins only).
func (h *Handler) CreateCustomer(ctx context.Context, req gen.CreateCustomerRequestObject) (gen.CreateCustomerResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	owner := p.ID
	if b.OwnerId != nil {
		if owner, err = parseID(*b.OwnerId, "/owner_id"); err != nil {
			return nil, err
		}
		if err := requireSelfAssigned(p, owner, "owner_id"); err != nil {
			return nil, err
		}
	}
	var text texts
	c := &store.Customer{
		Name:    text.required(b.Name, "/name"),
		Email:   deref(text.email(&b.Email, "/email")),
		Phone:   text.optional(b.Phone, "/phone"),
		Company: text.optional(b.Company, "/company"),
		Status:  string(deref(b.Status)),
		Notes:   text.optional(b.Notes, "/notes"),
		Tags:    text.tags(deref(b.Tags), "/tags"),
		OwnerID: &owner,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	if c.Status == "" {
		c.Status = store.StatusActive
	}
	if err := h.store.CreateCustomer(ctx, c); err != nil {
		return nil, err
	}
	return gen.CreateCustomer201JSONResponse{
		Body:    customerOut(c),
		Headers: gen.CreateCustomer201ResponseHeaders{Location: ptr("/customers/" + c.ID.Hex()), ETag: ptr(etag(c.Revision))},
	}, nil
}

// ListCustomers lists and searches customers.
func (h *Handler) ListCustomers(ctx context.Context, req gen.ListCustomersRequestObject) (gen.ListCustomersResponseObject, error) {
	prm := req.Params
	q := listQuery{resource: "customers", sort: string(deref(prm.Sort)), limit: prm.Limit, cursor: prm.Cursor, total: prm.IncludeTotal}
	if q.sort == "" {
		q.sort = string(gen.ListCustomersParamsSortMinusCreatedAt)
	}
	opts, err := h.options(q)
	if err != nil {
		return nil, err
	}
	var text texts
	filter := store.CustomerFilter{
		Status:        string(deref(prm.Status)),
		Company:       text.parameter(prm.Company, "company"),
		Email:         normalizeEmail(string(deref(prm.Email))),
		Tags:          text.parameters(deref(prm.Tag), "tag"),
		Search:        text.parameter(prm.Q, "q"),
		CreatedAfter:  prm.CreatedAfter,
		CreatedBefore: prm.CreatedBefore,
		UpdatedSince:  prm.UpdatedSince,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	if filter.OwnerIDs, err = idsParameter(deref(prm.OwnerId), "owner_id"); err != nil {
		return nil, err
	}
	page, err := h.store.ListCustomers(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	out := gen.CustomerList{Data: make([]gen.Customer, len(page.Items))}
	for i := range page.Items {
		out.Data[i] = customerOut(&page.Items[i])
	}
	lp := pageOf(ctx, h, q, page)
	out.NextCursor, out.Total = lp.next, lp.total
	return gen.ListCustomers200JSONResponse{Body: out, Headers: gen.ListCustomers200ResponseHeaders{Link: lp.link}}, nil
}

// GetCustomer returns a customer.
func (h *Handler) GetCustomer(ctx context.Context, req gen.GetCustomerRequestObject) (gen.GetCustomerResponseObject, error) {
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	c, err := h.store.GetCustomer(ctx, id)
	if err != nil {
		return nil, err
	}
	if same, err := notModified(req.Params.IfNoneMatch, etag(c.Revision)); same || err != nil {
		return gen.GetCustomer304Response{Headers: gen.NotModifiedResponseHeaders{ETag: ptr(etag(c.Revision))}}, err
	}
	body, err := customerJSON(customerOut(c))
	return recordAnswer{body, etag(c.Revision)}, err
}

// ReplaceCustomer replaces a customer's editable fields.
func (h *Handler) ReplaceCustomer(ctx context.Context, req gen.ReplaceCustomerRequestObject) (gen.ReplaceCustomerResponseObject, error) {
	b := req.Body
	var text texts
	ch := store.CustomerChanges{
		Name:    ptr(text.required(b.Name, "/name")),
		Email:   text.email(&b.Email, "/email"),
		Phone:   ptr(text.optional(b.Phone, "/phone")),
		Company: ptr(text.optional(b.Company, "/company")),
		Status:  ptr(string(b.Status)),
		Notes:   ptr(text.optional(b.Notes, "/notes")),
		Tags:    ptr(text.tags(deref(b.Tags), "/tags")),
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	c, err := h.editCustomer(ctx, req.Id, req.Params.IfMatch, ch, b.OwnerId)
	if err != nil {
		return nil, err
	}
	return gen.ReplaceCustomer200JSONResponse{Body: customerOut(c), Headers: gen.ReplaceCustomer200ResponseHeaders{ETag: ptr(etag(c.Revision))}}, nil
}

// UpdateCustomer applies a JSON Merge Patch to a customer.
func (h *Handler) UpdateCustomer(ctx context.Context, req gen.UpdateCustomerRequestObject) (gen.UpdateCustomerResponseObject, error) {
	b := req.ApplicationMergePatchPlusJSONBody
	if b == nil {
		b = req.JSONBody
	}
	if b == nil {
		return nil, invalidField("", "a JSON object with the fields to change is required")
	}
	var text texts
	ch := store.CustomerChanges{
		Name:    text.given(b.Name, "/name"),
		Email:   text.email(b.Email, "/email"),
		Phone:   text.patched(b.Phone, "/phone"),
		Company: text.patched(b.Company, "/company"),
		Status:  mapPtr(b.Status, func(s gen.CustomerStatus) string { return string(s) }),
		Notes:   text.patched(b.Notes, "/notes"),
	}
	if b.Tags.IsSpecified() {
		tags, _ := b.Tags.Get() // null gives nil: no tags
		ch.Tags = ptr(text.tags(tags, "/tags"))
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	c, err := h.editCustomer(ctx, req.Id, req.Params.IfMatch, ch, b.OwnerId)
	if err != nil {
		return nil, err
	}
	return gen.UpdateCustomer200JSONResponse{Body: customerOut(c), Headers: gen.UpdateCustomer200ResponseHeaders{ETag: ptr(etag(c.Revision))}}, nil
}

// editCustomer applies changes (and a new owner, if given) to the customer
// idHex, as the signed-in user may.
func (h *Handler) editCustomer(ctx context.Context, idHex string, ifMatch *string, ch store.CustomerChanges, ownerHex *string) (*store.Customer, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID(idHex, "")
	if err != nil {
		return nil, err
	}
	if ownerHex != nil {
		owner, err := parseID(*ownerHex, "/owner_id")
		if err != nil {
			return nil, err
		}
		ch.OwnerID = &owner
	}
	var updated *store.Customer
	err = retryStale(ifMatch, func() error {
		cur, err := h.store.GetCustomer(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, cur.Revision); err != nil {
			return err
		}
		if err := requireOwner(p, cur.OwnerID, "customers"); err != nil {
			return err
		}
		changes := ch.Effective(cur)
		if changes.OwnerID != nil {
			if err := requireSelfAssigned(p, *changes.OwnerID, "owner_id"); err != nil {
				return err
			}
		}
		if changes.None() {
			updated = cur
			return nil
		}
		updated, err = h.store.UpdateCustomer(ctx, id, cur.Revision, changes)
		return err
	})
	return updated, err
}

// DeleteCustomer deletes a customer, and with cascade=true its interactions.
func (h *Handler) DeleteCustomer(ctx context.Context, req gen.DeleteCustomerRequestObject) (gen.DeleteCustomerResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	err = retryStale(req.Params.IfMatch, func() error {
		cur, err := h.store.GetCustomer(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(req.Params.IfMatch, cur.Revision); err != nil {
			return err
		}
		if err := requireOwner(p, cur.OwnerID, "customers"); err != nil {
			return err
		}
		// A member's cascade may only take the member's own interactions.
		var onlyOf *bson.ObjectID
		if !p.IsAdmin {
			onlyOf = &p.ID
		}
		return h.store.DeleteCustomer(ctx, id, cur.Revision, deref(req.Params.Cascade), onlyOf)
	})
	var ref *store.ReferencedError
	if errors.As(err, &ref) {
		return nil, &ConflictError{Detail: "The customer still has " + ref.By + "; delete them first, or send cascade=true to delete them with the customer."}
	}
	if errors.Is(err, store.ErrCascadeRefusedPartly) {
		return nil, forbidden("Another user's interaction came to this customer while it was being deleted, so it stays; your own interactions with it were deleted. Members may only delete their own, so ask an admin.")
	}
	if errors.Is(err, store.ErrCascadeRefused) {
		return nil, forbidden("Other users recorded interactions with this customer; members may only delete their own, so ask an admin.")
	}
	if err != nil {
		return nil, err
	}
	return gen.DeleteCustomer204Response{}, nil
}

// ListCustomerInteractions lists a customer's interactions: the timeline.
func (h *Handler) ListCustomerInteractions(ctx context.Context, req gen.ListCustomerInteractionsRequestObject) (gen.ListCustomerInteractionsResponseObject, error) {
	prm := req.Params
	list, err := h.customerTimeline(ctx, req.Id, interactionQuery{
		sort: string(deref(prm.Sort)), limit: prm.Limit, cursor: prm.Cursor, total: prm.IncludeTotal,
		userIDs: deref(prm.UserId), types: enumValues(deref(prm.Type)), statuses: enumValues(deref(prm.Status)),
		search: prm.Q, scheduledFrom: prm.ScheduledFrom, scheduledTo: prm.ScheduledTo,
		createdAfter: prm.CreatedAfter, createdBefore: prm.CreatedBefore, updatedSince: prm.UpdatedSince,
	})
	if err != nil {
		return nil, err
	}
	return gen.ListCustomerInteractions200JSONResponse{Body: list.body, Headers: gen.ListCustomerInteractions200ResponseHeaders{Link: list.link}}, nil
}

// customerTimeline lists the interactions of the customer idHex, which must exist.
func (h *Handler) customerTimeline(ctx context.Context, idHex string, q interactionQuery) (interactionPage, error) {
	id, err := parseID(idHex, "")
	if err != nil {
		return interactionPage{}, err
	}
	// A customer without interactions and a customer that does not exist are
	// different answers: an empty page, and 404.
	if _, err := h.store.GetCustomer(ctx, id); err != nil {
		return interactionPage{}, err
	}
	q.customerID = &id
	return h.listInteractions(ctx, q)
}
