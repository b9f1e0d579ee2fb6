from raypi.encoders._vocab import RADIOLOGY_WORDS, fallback_tokenizer


def test_report_words_are_whole_tokens_and_the_rest_characters():
    tokenizer = fallback_tokenizer(512)
    assert len(tokenizer) == 512
    tokens = tokenizer.tokenize("Mild cardiomegaly. No pleural effusion; qz")
    assert tokens == ["mild", "cardiomegaly", ".", "no", "pleural", "effusion", ";", "q", "##z"]
    ids = tokenizer("atelectasis " * 300, truncation=True, max_length=128)["input_ids"]
    assert len(ids) == 128 and max(ids) < 512


def test_every_word_fits_a_bert_base_vocabulary_without_duplicates():
    tokenizer = fallback_tokenizer(30522)
    vocab = tokenizer.get_vocab()
    assert len(vocab) == 30522 == len(set(vocab.values()))
    assert all(word in vocab for word in RADIOLOGY_WORDS)
