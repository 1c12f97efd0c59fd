package api

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/store"
)

// deprecatedSince is when GET /interactions/customer/{customer_id} was
// deprecated, as an RFC 9745 Deprecation header (a Unix time): 2026-11-26.
const deprecatedSince = "@1795651200"

func interactionOut(it *store.Interaction) gen.Interaction {
	return gen.Interaction{
		Id:          it.ID.Hex(),
		UserId:      it.UserID.Hex(),
		CustomerId:  it.CustomerID.Hex(),
		Type:        gen.InteractionType(it.Type),
		Description: optional(it.Description),
		Status:      gen.InteractionStatus(it.Status),
		ScheduledAt: it.ScheduledAt,
		CreatedAt:   it.CreatedAt,
		UpdatedAt:   it.UpdatedAt,
	}
}

// interactionJSON is it as encoding/json writes it, written faster (see json.go).
func interactionJSON(it gen.Interaction) ([]byte, error) {
	o := newJSONObject()
	o.string("id", it.Id)
	o.string("user_id", it.UserId)
	o.string("customer_id", it.CustomerId)
	o.string("type", string(it.Type))
	o.optionalString("description", it.Description)
	o.string("status", string(it.Status))
	o.optionalTime("scheduled_at", it.ScheduledAt)
	o.time("created_at", it.CreatedAt)
	o.time("updated_at", it.UpdatedAt)
	return o.end()
}

// CreateInteraction records an interaction of the signed-in user unless user_id
// names someone else (admins only). Customer and user must exist.
func (h *Handler) CreateInteraction(ctx context.Context, req gen.CreateInteractionRequestObject) (gen.CreateInteractionResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	var text texts
	it := &store.Interaction{
		UserID:      p.ID,
		Type:        string(b.Type),
		Description: text.optional(b.Description, "/description"),
		Status:      string(deref(b.Status)),
		ScheduledAt: utc(b.ScheduledAt),
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	if it.CustomerID, err = parseID(b.CustomerId, "/customer_id"); err != nil {
		return nil, err
	}
	if b.UserId != nil {
		if it.UserID, err = parseID(*b.UserId, "/user_id"); err != nil {
			return nil, err
		}
		if err := requireSelfAssigned(p, it.UserID, "user_id"); err != nil {
			return nil, err
		}
	}
	if it.Status == "" {
		it.Status = string(gen.Open)
	}
	if err := h.store.CreateInteraction(ctx, it); err != nil {
		return nil, err
	}
	return gen.CreateInteraction201JSONResponse{
		Body:    interactionOut(it),
		Headers: gen.CreateInteraction201ResponseHeaders{Location: ptr("/interactions/" + it.ID.Hex()), ETag: ptr(etag(it.Revision))},
	}, nil
}

// interactionQuery is what the three interaction lists read from their parameters.
type interactionQuery struct {
	sort                        string
	limit                       *int
	cursor                      *string
	total                       *bool
	customerID                  *bson.ObjectID
	userIDs, types, statuses    []string // any of them
	search                      *string
	scheduledFrom, scheduledTo  *time.Time
	createdAfter, createdBefore *time.Time
	updatedSince                *time.Time
}

// interactionPage is a page of interactions and its Link header.
type interactionPage struct {
	body gen.InteractionList
	link *string
}

// listInteractions runs q.
func (h *Handler) listInteractions(ctx context.Context, q interactionQuery) (interactionPage, error) {
	lq := listQuery{resource: "interactions", sort: q.sort, limit: q.limit, cursor: q.cursor, total: q.total}
	if lq.sort == "" {
		lq.sort = string(gen.ListInteractionsParamsSortMinusCreatedAt)
	}
	opts, err := h.options(lq)
	if err != nil {
		return interactionPage{}, err
	}
	var text texts
	filter := store.InteractionFilter{
		CustomerID:    q.customerID,
		Types:         q.types,
		Statuses:      q.statuses,
		Search:        text.parameter(q.search, "q"),
		ScheduledFrom: q.scheduledFrom,
		ScheduledTo:   q.scheduledTo,
		CreatedAfter:  q.createdAfter,
		CreatedBefore: q.createdBefore,
		UpdatedSince:  q.updatedSince,
	}
	if err := text.err(); err != nil {
		return interactionPage{}, err
	}
	if filter.UserIDs, err = idsParameter(q.userIDs, "user_id"); err != nil {
		return interactionPage{}, err
	}
	page, err := h.store.ListInteractions(ctx, filter, opts)
	if err != nil {
		return interactionPage{}, err
	}
	out := gen.InteractionList{Data: make([]gen.Interaction, len(page.Items))}
	for i := range page.Items {
		out.Data[i] = interactionOut(&page.Items[i])
	}
	lp := pageOf(ctx, h, lq, page)
	out.NextCursor, out.Total = lp.next, lp.total
	return interactionPage{body: out, link: lp.link}, nil
}

// ListInteractions lists interactions.
func (h *Handler) ListInteractions(ctx context.Context, req gen.ListInteractionsRequestObject) (gen.ListInteractionsResponseObject, error) {
	prm := req.Params
	customer, err := idParameter(prm.CustomerId, "customer_id")
	if err != nil {
		return nil, err
	}
	list, err := h.listInteractions(ctx, interactionQuery{
		sort: string(deref(prm.Sort)), limit: prm.Limit, cursor: prm.Cursor, total: prm.IncludeTotal,
		customerID: customer, userIDs: deref(prm.UserId), types: enumValues(deref(prm.Type)), statuses: enumValues(deref(prm.Status)),
		search: prm.Q, scheduledFrom: prm.ScheduledFrom, scheduledTo: prm.ScheduledTo,
		createdAfter: prm.CreatedAfter, createdBefore: prm.CreatedBefore, updatedSince: prm.UpdatedSince,
	})
	if err != nil {
		return nil, err
	}
	return gen.ListInteractions200JSONResponse{Body: list.body, Headers: gen.ListInteractions200ResponseHeaders{Link: list.link}}, nil
}

// ListInteractionsByCustomerLegacy is the original CRM's route for a customer's
// interactions; it answers like ListCustomerInteractions and points there.
func (h *Handler) ListInteractionsByCustomerLegacy(ctx context.Context, req gen.ListInteractionsByCustomerLegacyRequestObject) (gen.ListInteractionsByCustomerLegacyResponseObject, error) {
	list, err := h.customerTimeline(ctx, req.CustomerId, interactionQuery{limit: req.Params.Limit, cursor: req.Params.Cursor})
	if err != nil {
		return nil, err
	}
	link := `</customers/` + req.CustomerId + `/interactions>; rel="successor-version"`
	if list.link != nil {
		link += ", " + *list.link
	}
	return gen.ListInteractionsByCustomerLegacy200JSONResponse{
		Body:    list.body,
		Headers: gen.ListInteractionsByCustomerLegacy200ResponseHeaders{Deprecation: ptr(deprecatedSince), Link: &link},
	}, nil
}

// GetInteraction returns an interaction.
func (h *Handler) GetInteraction(ctx context.Context, req gen.GetInteractionRequestObject) (gen.GetInteractionResponseObject, error) {
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	it, err := h.store.GetInteraction(ctx, id)
	if err != nil {
		return nil, err
	}
	if same, err := notModified(req.Params.IfNoneMatch, etag(it.Revision)); same || err != nil {
		return gen.GetInteraction304Response{Headers: gen.NotModifiedResponseHeaders{ETag: ptr(etag(it.Revision))}}, err
	}
	body, err := interactionJSON(interactionOut(it))
	return recordAnswer{body, etag(it.Revision)}, err
}

// interactionEdit is a requested change to an interaction, from PUT or PATCH,
// with the ids still in hex as the body had them.
type interactionEdit struct {
	changes              store.InteractionChanges
	userHex, customerHex *string
}

// ReplaceInteraction replaces an interaction's editable fields.
func (h *Handler) ReplaceInteraction(ctx context.Context, req gen.ReplaceInteractionRequestObject) (gen.ReplaceInteractionResponseObject, error) {
	b := req.Body
	var text texts
	edit := interactionEdit{
		changes: store.InteractionChanges{
			Type:        ptr(string(b.Type)),
			Description: ptr(text.optional(b.Description, "/description")),
			Status:      ptr(string(b.Status)),
			ScheduledAt: ptr(utc(b.ScheduledAt)), // absent: nil, which clears it
		},
		userHex:     &b.UserId,
		customerHex: &b.CustomerId,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	it, err := h.editInteraction(ctx, req.Id, req.Params.IfMatch, edit)
	if err != nil {
		return nil, err
	}
	return gen.ReplaceInteraction200JSONResponse{Body: interactionOut(it), Headers: gen.ReplaceInteraction200ResponseHeaders{ETag: ptr(etag(it.Revision))}}, nil
}

// UpdateInteraction applies a JSON Merge Patch to an interaction.
func (h *Handler) UpdateInteraction(ctx context.Context, req gen.UpdateInteractionRequestObject) (gen.UpdateInteractionResponseObject, error) {
	b := req.ApplicationMergePatchPlusJSONBody
	if b == nil {
		b = req.JSONBody
	}
	if b == nil {
		return nil, invalidField("", "a JSON object with the fields to change is required")
	}
	var text texts
	edit := interactionEdit{
		changes: store.InteractionChanges{
			Type:        (*string)(b.Type),
			Description: text.patched(b.Description, "/description"),
			Status:      (*string)(b.Status),
		},
		userHex:     b.UserId,
		customerHex: b.CustomerId,
	}
	if err := text.err(); err != nil {
		return nil, err
	}
	if b.ScheduledAt.IsSpecified() {
		var at *time.Time // null: nil, which clears it
		if !b.ScheduledAt.IsNull() {
			t, _ := b.ScheduledAt.Get()
			at = ptr(t.UTC())
		}
		edit.changes.ScheduledAt = &at
	}
	it, err := h.editInteraction(ctx, req.Id, req.Params.IfMatch, edit)
	if err != nil {
		return nil, err
	}
	return gen.UpdateInteraction200JSONResponse{Body: interactionOut(it), Headers: gen.UpdateInteraction200ResponseHeaders{ETag: ptr(etag(it.Revision))}}, nil
}

// editInteraction applies edit to the interaction idHex, as the signed-in user may.
func (h *Handler) editInteraction(ctx context.Context, idHex string, ifMatch *string, edit interactionEdit) (*store.Interaction, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID(idHex, "")
	if err != nil {
		return nil, err
	}
	ch := edit.changes
	if edit.userHex != nil {
		uid, err := parseID(*edit.userHex, "/user_id")
		if err != nil {
			return nil, err
		}
		ch.UserID = &uid
	}
	if edit.customerHex != nil {
		cid, err := parseID(*edit.customerHex, "/customer_id")
		if err != nil {
			return nil, err
		}
		ch.CustomerID = &cid
	}
	var updated *store.Interaction
	err = retryStale(ifMatch, func() error {
		cur, err := h.store.GetInteraction(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, cur.Revision); err != nil {
			return err
		}
		if err := requireOwner(p, &cur.UserID, "interactions"); err != nil {
			return err
		}
		// Unchanged references need no check that they exist, nor permission.
		changes := ch.Effective(cur)
		if changes.UserID != nil {
			if err := requireSelfAssigned(p, *changes.UserID, "user_id"); err != nil {
				return err
			}
		}
		if changes.None() {
			updated = cur
			return nil
		}
		updated, err = h.store.UpdateInteraction(ctx, id, cur.Revision, changes)
		return err
	})
	return updated, err
}

// DeleteInteraction deletes an interaction.
func (h *Handler) DeleteInteraction(ctx context.Context, req gen.DeleteInteractionRequestObject) (gen.DeleteInteractionResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID(req.Id, "")
	if err != nil {
		return nil, err
	}
	err = retryStale(req.Params.IfMatch, func() error {
		cur, err := h.store.GetInteraction(ctx, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(req.Params.IfMatch, cur.Revision); err != nil {
			return err
		}
		if err := requireOwner(p, &cur.UserID, "interactions"); err != nil {
			return err
		}
		return h.store.DeleteInteraction(ctx, id, cur.Revision)
	})
	if err != nil {
		return nil, err
	}
	return gen.DeleteInteraction204Response{}, nil
}

// utc returns t in UTC, keeping nil as nil.
func utc(t *time.Time) *time.Time { return mapPtr(t, time.Time.UTC) }
