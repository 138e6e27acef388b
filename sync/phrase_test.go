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

func TestPhrase_Refusals(t *testing.T) {
	k, _ := agentkeys.NewKey()
	p, _ := sync.EncodePhrase(k)
	words := strings.Fields(p)
	with := func(i int, w string) string {
		c := append([]string(nil), words...)
		c[i] = w
		return strings.Join(c, " ")
	}
	// A valid word that breaks the checksum: the last word carries 3 bits
	// of key and the 8-bit checksum; flip a checksum bit.
	idx, _ := bip39.GetWordIndex(words[23])
	other := bip39.GetWordList()[idx^1]
	for _, tc := range []struct {
		name, phrase, want string
	}{
		{"Typo", with(6, words[6]+"x"), "word 7 of the recovery phrase is not a BIP-39 English word"},
		{"TypoFirst", with(0, "zzzz"), "word 1 of"},
		{"Short", strings.Join(words[:23], " "), "has 23 words, not 24"},
		{"Empty", "", "has 0 words"},
		{"Checksum", with(23, other), "checksum does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sync.DecodePhrase(tc.phrase)
			if agentkeys.ErrorCode(err) != agentkeys.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want EINVALID with %q", err, tc.want)
			}
			for i, w := range words {
				if i != 6 && len(w) > 3 && strings.Contains(err.Error(), w) {
					t.Fatalf("the message quotes a word of the phrase: %v", err)
				}
			}
		})
	}
}
