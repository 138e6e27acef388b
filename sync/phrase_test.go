package sync_test

import (
	"strings"
	"testing"

	"github.com/tyler-smith/go-bip39"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/sync"
)

func TestPhrase_RoundTrip(t *testing.T) {
	for i := 0; i < 50; i++ {
		k, _ := agentkeys.NewKey()
		p, err := sync.EncodePhrase(k)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(strings.Fields(p)); n != 24 || strings.Contains(p, "\n") {
			t.Fatalf("phrase has %d words or a newline: %q", n, p)
		}
		got, err := sync.DecodePhrase("  " + strings.ToUpper(strings.ReplaceAll(p, " ", "   ")) + "\n")
		if err != nil || got != k {
			t.Fatalf("decode: %v", err)
		}
	}
}

func randomWords(t *testing.T) []string {
	k, _ := agentkeys.NewKey()
	p, err := sync.EncodePhrase(k)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(p)
}

// TestPhrase_Refusals: each bad phrase is refused with what is wrong and
// where; the message is the same whatever the words, so it never quotes
// one.
func TestPhrase_Refusals(t *testing.T) {
	with := func(words []string, i int, w string) string {
		c := append([]string(nil), words...)
		c[i] = w
		return strings.Join(c, " ")
	}
	for _, tc := range []struct {
		name   string
		phrase func(words []string) string
		want   string
	}{
		{"Typo", func(w []string) string { return with(w, 6, w[6]+"x") }, "word 7 of the recovery phrase is not a BIP-39 English word"},
		{"TypoFirst", func(w []string) string { return with(w, 0, "zzzz") }, "word 1 of"},
		{"Short", func(w []string) string { return strings.Join(w[:23], " ") }, "has 23 words, not 24"},
		{"Empty", func([]string) string { return "" }, "has 0 words"},
		// The last word carries 3 bits of key and the 8-bit checksum:
		// flipping a checksum bit keeps a valid word and breaks the sum.
		{"Checksum", func(w []string) string {
			idx, _ := bip39.GetWordIndex(w[23])
			return with(w, 23, bip39.GetWordList()[idx^1])
		}, "checksum does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []string
			for range 2 {
				_, err := sync.DecodePhrase(tc.phrase(randomWords(t)))
				if agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want EINVALID with %q", err, tc.want)
				}
				msgs = append(msgs, err.Error())
			}
			if msgs[0] != msgs[1] {
				t.Fatalf("the message depends on the words: %q vs %q", msgs[0], msgs[1])
			}
		})
	}
}
