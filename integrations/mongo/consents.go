package mongo

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/medshare/medshare/consent"
)

var _ consent.ConsentStore = (*RecordStore)(nil)

// Consents are stored as consentDoc: _id is the consent id, the other
// fields are consent.Consent's JSON names. Listings are an equality on the
// first key of an index and a sort on its second, so they read only the
// consents they return.
var consentIndexes = []index{
	{name: "patientRef_id", keys: bson.D{{Key: "patientRef", Value: 1}, {Key: "_id", Value: 1}}},
	{name: "granteeOrg_id", keys: bson.D{{Key: "grantee.org", Value: 1}, {Key: "_id", Value: 1}}},
}

// consentDoc is one document of the consents collection.
type consentDoc struct {
	ID              string `bson:"_id"`
	consent.Consent `bson:",inline"`
}

// checkpointDoc is one document of the checkpoints collection.
type checkpointDoc struct {
	Name  string `bson:"_id"`
	Block uint64 `bson:"block"`
}

// SaveConsent implements consent.ConsentStore. EINVALID unless c has a
// valid id and grantee org, a patientRef and a version of at least 1.
//
// It is one conditional upsert: replace the document whose _id is c's and
// whose version is lower. When none matches, the upsert inserts, and the
// insert collides on _id exactly when a copy as new as c exists: that
// collision means "ignored". Two saves racing on an absent consent can
// collide too, so a collision is retried once; by then the document exists
// (consents are never deleted), so a second collision proves it is as new.
func (s *RecordStore) SaveConsent(ctx context.Context, c consent.Consent) error {
	if err := validConsent(&c); err != nil {
		return err
	}
	filter := bson.D{{Key: "_id", Value: c.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: c.Version}}}}
	doc := consentDoc{ID: c.ID, Consent: c}
	var err error
	for range 2 {
		_, err = s.consents.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
		if !mongo.IsDuplicateKeyError(err) {
			return wrapError(err, "save consent %s version %d", c.ID, c.Version)
		}
	}
	return nil // a late or repeated event
}

// StoredConsents implements consent.ConsentStore: the consents of one
// patient or of one grantee org, ordered by id. EINVALID unless exactly one
// filter field is set.
func (s *RecordStore) StoredConsents(ctx context.Context, f consent.ConsentFilter) ([]consent.Consent, error) {
	var filter bson.D
	switch {
	case f.PatientRef != "" && f.GranteeOrg == "":
		filter = bson.D{{Key: "patientRef", Value: f.PatientRef}}
	case f.GranteeOrg != "" && f.PatientRef == "":
		filter = bson.D{{Key: "grantee.org", Value: f.GranteeOrg}}
	default:
		return nil, consent.Errorf(consent.EINVALID, "list consents by exactly one of patientRef or granteeOrg")
	}
	cur, err := s.consents.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrapError(err, "list stored consents")
	}
	var docs []consentDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrapError(err, "list stored consents")
	}
	out := make([]consent.Consent, len(docs))
	for i, d := range docs {
		out[i] = d.Consent
	}
	return out, nil
}

// SaveCheckpoint implements consent.ConsentStore: an upsert of {_id: name,
// block}. EINVALID for an empty name.
func (s *RecordStore) SaveCheckpoint(ctx context.Context, name string, block uint64) error {
	if name == "" {
		return consent.Errorf(consent.EINVALID, "checkpoint name is empty")
	}
	_, err := s.checkpoints.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: name}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "block", Value: block}}}},
		options.Update().SetUpsert(true))
	return wrapError(err, "save checkpoint %s", name)
}

// Checkpoint implements consent.ConsentStore: 0 when name has none.
func (s *RecordStore) Checkpoint(ctx context.Context, name string) (uint64, error) {
	var d checkpointDoc
	err := s.checkpoints.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, wrapError(err, "get checkpoint %s", name)
	}
	return d.Block, nil
}

// validConsent checks the fields the collection and its indexes rely on;
// the ledger has validated the rest.
func validConsent(c *consent.Consent) error {
	switch {
	case !consent.ValidID(c.ID):
		return consent.Errorf(consent.EINVALID, "consent id %q is invalid", c.ID)
	case c.PatientRef == "":
		return consent.Errorf(consent.EINVALID, "consent %s has no patientRef", c.ID)
	case !consent.ValidID(c.Grantee.Org):
		return consent.Errorf(consent.EINVALID, "consent %s: grantee org %q is invalid", c.ID, c.Grantee.Org)
	case c.Version < 1:
		return consent.Errorf(consent.EINVALID, "consent %s: version %d is below 1", c.ID, c.Version)
	}
	return nil
}
