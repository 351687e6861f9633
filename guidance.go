package kycd

import "strings"

// Guidance maps Ralio reason codes to a short sentence a merchant can show
// the user, saying what to do next. Keys ending in "*" match a code prefix
// (KYC.DOC.*); the longest matching key wins.
type Guidance map[string]string

// GenericGuidance is shown for codes no entry covers.
const GenericGuidance = "We could not verify your identity. Please start a new verification and follow the instructions carefully."

// DefaultGuidance covers the reason codes Ralio is known to send.
func DefaultGuidance() Guidance {
	return Guidance{
		"EXPIRED_DOCUMENT":         "Your document has expired. Please verify again with a valid, unexpired document.",
		"NO_MATCH":                 "Your selfie did not match the photo on your document. Please try again in good light, facing the camera, using your own document.",
		"LOW_CONFIDENCE":           "We could not confirm your identity with enough confidence. Please try again with clear, well-lit photos.",
		"KYC.DOC.DETERIORATED":     "Your document looks damaged and could not be read. Please use an undamaged document.",
		"KYC.DOC.*":                "There was a problem with your document. Please verify again with a valid, clearly photographed document.",
		"KYC.FACE.*":               "We could not verify your face. Please retake the selfie in good light, without glasses or a hat.",
		"KYC.LIVENESS.*":           "The liveness check did not pass. Please retake it yourself, in good light, following the on-screen steps.",
		"UNSUPPORTED_DOCUMENT":     "This type of document is not accepted. Please use a passport, national ID card or driving licence.",
		"BLURRY_IMAGE":             "The photo of your document was blurry. Please retake it on a flat surface in good light.",
		"DOCUMENT_NOT_FULLY_SHOWN": "Part of your document was cut off. Please make sure all four corners are visible.",
	}
}

// For returns the guidance for code: an exact entry, else the longest
// matching prefix entry, else GenericGuidance.
func (g Guidance) For(code string) string {
	if s, ok := g[code]; ok {
		return s
	}
	best, bestLen := "", -1
	for k, s := range g {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(code, p) && len(p) > bestLen {
			best, bestLen = s, len(p)
		}
	}
	if bestLen >= 0 {
		return best
	}
	return GenericGuidance
}

// Merge returns g with the entries of over added or replacing its own.
func (g Guidance) Merge(over Guidance) Guidance {
	out := make(Guidance, len(g)+len(over))
	for k, v := range g {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
