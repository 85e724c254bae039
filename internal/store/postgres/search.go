package postgres

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Full-text search.
//
// The store computes lexemes itself instead of using a PostgreSQL text
// search configuration: a token is a run of letters and digits (what
// SQLite's unicode61 tokenizer takes), folded to lower case with its
// diacritics removed (unicode61's remove_diacritics 2), so "Café" and
// "cafe" match on both stores. messages.tsv is array_to_tsvector of those
// lexemes, which stores them as given, and a query is a tsquery built from
// the same lexemes, cast without going through any parser. User text can
// therefore never be tsquery syntax: every operand is a quoted lexeme of
// letters and digits.

// maxLexeme is the longest token indexed, in bytes. Longer runs (a pasted
// hash, base64) are not words anyone searches for, and PostgreSQL refuses
// lexemes over 2 KiB.
const maxLexeme = 255

// lexemes returns the distinct search lexemes of text, in first-seen order.
func lexemes(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, tok := range tokens(text) {
		if !seen[tok] {
			seen[tok] = true
			out = append(out, tok)
		}
	}
	return out
}

// tokens splits text into folded tokens.
func tokens(text string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 && b.Len() <= maxLexeme {
			out = append(out, b.String())
		}
		b.Reset()
	}
	// NFD splits a letter from its accents, which are then dropped as
	// non-spacing marks (unicode.Mn) without ending the token.
	for _, r := range norm.NFD.String(text) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return out
}

// tsQuery turns user text into a tsquery that matches messages containing
// every word: the tokens of one word and the words are ANDed, and each
// word's last token matches as a prefix (a trailing '*' is ignored). It
// returns "" when the text has no token.
func tsQuery(q string) string {
	var parts []string
	for _, w := range strings.Fields(q) {
		toks := tokens(w)
		for i, tok := range toks {
			// Tokens hold only letters and digits, so quoting cannot be
			// escaped; the replacement is a second guard.
			p := "'" + strings.ReplaceAll(tok, "'", "''") + "'"
			// Every word's last token is a prefix: people type the start of
			// what they remember ("welc" for "welcome").
			if i == len(toks)-1 {
				p += ":*"
			}
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, " & ")
}
