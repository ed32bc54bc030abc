"""Preprocessing must match the original VirNucPro base for base."""

from __future__ import annotations

import gzip
import json

import pytest
from Bio.Seq import Seq
from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro_core.errors import InputError
from virnucpro_core.preprocess.fasta import PROTEIN
from virnucpro_core.files import sha256_file
from virnucpro_core.preprocess.sequences import (
    FastaFile,
    FastaRecord,
    chunk_record,
    chunk_starts,
    preprocess,
    read_fasta,
    reverse_complement,
    select_frames,
    six_frames,
    source_id,
    translate,
)

dna = st.text(alphabet="ACGT", min_size=0, max_size=400)
dna_with_noise = st.text(alphabet="ACGTacgtNRY", min_size=1, max_size=400)


# ----------------------------------------------------------------- chunking, literal values


@pytest.mark.parametrize(
    ("length", "size", "starts"),
    [
        (1, 300, [0]),
        (300, 300, [0]),
        (301, 300, [0, 150]),  # surplus 299 over 2 chunks: overlap 150
        (599, 300, [0, 299]),
        (605, 300, [0, 201, 402]),
        (1000, 300, [0, 249, 498, 747]),  # overlaps 51, 51, 51 (> surplus 200): last chunk cut short
        (7, 3, [0, 2, 4]),
        (1200, 500, [0, 399, 798]),  # overlaps 101, 101: again more than the 300-base surplus
        (1001, 500, [0, 333, 666]),  # surplus 499: lower 166, need 167 -> overlaps 167, 167
    ],
    ids=lambda v: str(v),
)
def test_chunk_starts_literal(length, size, starts):
    assert chunk_starts(length, size) == starts


def test_chunk_record_ids_and_case_kept():
    chunks = chunk_record(FastaRecord("g1", "acgTACGTac"), 4)
    assert [(c.id, c.seq) for c in chunks] == [
        ("g1_chunk_1", "acgT"),
        ("g1_chunk_2", "TACG"),
        ("g1_chunk_3", "GTac"),
    ]


def test_record_shorter_than_chunk_is_one_chunk():
    assert [(c.id, c.seq) for c in chunk_record(FastaRecord("s", "ACG"), 300)] == [("s_chunk_1", "ACG")]


@given(length=st.integers(min_value=1, max_value=5000), size=st.sampled_from([3, 7, 300, 500]))
def test_chunks_cover_every_base_and_are_full_length(length, size):
    starts = chunk_starts(length, size)
    covered = set()
    for start in starts:
        covered.update(range(start, min(start + size, length)))
    assert covered == set(range(length))
    if length >= size:
        # Every chunk but the last is S long. The last one too, except where the
        # original's overlaps add up to more than the surplus (L=1000, S=300:
        # starts 0, 249, 498, 747, last chunk 253 bases) -- kept, see chunk_starts.
        assert all(start + size <= length for start in starts[:-1])
        assert all(min(size, length - start) == size for start in starts[:-1])
    assert starts == sorted(starts) and starts[0] == 0


# ----------------------------------------------------------------- translation


def test_translate_skips_codons_with_ambiguous_bases():
    assert translate("ATGNNNAAATAA") == "MK*"
    assert translate("ATGAA") == "M"  # a partial codon is not read


def test_six_frames_literal():
    assert six_frames("ATGAAATTTGGGNNNtaa") == ["MKFG*", "*NL", "EIW", "LPKFH", "PNF", "QIS"]


def test_reverse_complement_keeps_case_and_other_characters():
    assert reverse_complement("AaCcGgTtNn-") == "-nNaAcCgGtT"


@given(dna)
def test_translation_agrees_with_biopython(seq):
    usable = len(seq) - len(seq) % 3
    assert translate(seq) == str(Seq(seq[:usable]).translate())


@given(dna_with_noise)
def test_reverse_complement_is_an_involution(seq):
    assert reverse_complement(reverse_complement(seq)) == seq


# ----------------------------------------------------------------- frame selection


def test_select_frames_literal():
    frames = select_frames(FastaRecord("x_chunk_1", "ATGAAATTTGGGCCCAAA"))
    assert [(f.id, f.frame, f.nucleotide, f.protein) for f in frames] == [
        ("x_chunk_1F1", 1, "ATGAAATTTGGGCCCAAA", "MKFGPK"),
        # one base longer than the 5 codons read: the original's slice
        ("x_chunk_1F3", 3, "GAAATTTGGGCCCAAA", "EIWAQ"),
        ("x_chunk_1R1", 4, "TTTGGGCCCAAATTTCAT", "FGPKFH"),
        ("x_chunk_1R2", 5, "TTGGGCCCAAATTTCA", "LGPNF"),
        ("x_chunk_1R3", 6, "TGGGCCCAAATTTCAT", "WAQIS"),
    ]


def test_select_frames_upper_cases_like_the_original():
    frames = select_frames(FastaRecord("c", "atgaaatttggg"))
    assert frames[0].nucleotide == "ATGAAATTTGGG" and frames[0].protein == "MKFG"


def test_frame_with_only_ambiguous_codons_is_dropped():
    assert select_frames(FastaRecord("c", "NNNNNN")) == []


@given(dna_with_noise)
@settings(max_examples=200)
def test_selected_lengths_agree(seq):
    for frame in select_frames(FastaRecord("r_chunk_1", seq)):
        assert "*" not in frame.protein and frame.protein
        offset = (frame.frame - 1) % 3
        # nucleotide = 3 bases per residue + 1, cut at the chunk end
        assert len(frame.nucleotide) == min(3 * len(frame.protein) + 1, len(seq) - offset)


def test_training_mode_drops_ambiguous_chunks_and_keeps_reference_frames():
    chunk = FastaRecord("g_chunk_1", "ATGAAATTTGGGCCCAAA")
    kept = select_frames(chunk, reference_proteins=["XXMKFGPKYY"])
    assert [f.id for f in kept] == ["g_chunk_1F1"]
    assert select_frames(FastaRecord("g_chunk_2", "ATGAAAYTTGGG"), reference_proteins=["MKFG"]) == []
    assert select_frames(chunk, reference_proteins=[]) == []


def test_source_id():
    assert source_id("NC_001_chunk_12F3") == "NC_001"
    assert source_id("a_chunk_b_chunk_2R1") == "a_chunk_b"


# ----------------------------------------------------------------- reading and the stage


def test_read_fasta_gzip_and_multiline(tmp_path):
    path = tmp_path / "in.fa.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(">a desc\nACGT\nacgn\n>b\nTTTT\n")
    assert read_fasta(path) == [FastaRecord("a", "ACGTacgn"), FastaRecord("b", "TTTT")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no FASTA records"),
        ("ACGT\n", "before the first '>'"),
        (">a\nACGT\n>a\nACGT\n", "duplicate id 'a'"),
        (">a\nAC1GT\n", "character(s) '1'"),
        (">a\n\n>b\nACGT\n", "record 'a' has no sequence"),
    ],
    ids=["empty", "no-header", "duplicate", "bad-char", "empty-record"],
)
def test_read_fasta_rejects_bad_input(tmp_path, content, message):
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_fasta(path)


def test_preprocess_writes_three_files_in_input_order(tmp_path):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">b\nATGAAATTTGGGCCCAAA\n>a\nATGTAA\n")
    result = preprocess(fasta, 9, tmp_path / "out")
    assert result.chunks == 3 and result.records == 2
    chunks = read_fasta(result.paths.chunks)
    assert [c.id for c in chunks] == ["b_chunk_1", "b_chunk_2", "a_chunk_1"]
    nucleotide = read_fasta(result.paths.nucleotide)
    protein = result.paths.protein.read_text().split("\n")[0::2]
    assert [n.id for n in nucleotide] == [p[1:] for p in protein if p]
    assert nucleotide[0].id.startswith("b_chunk_1")
    assert not list((tmp_path / "out").glob("*.part"))


@pytest.mark.parametrize("workers", [1, 2])
def test_preprocess_of_a_file_read_before_keeps_its_outputs_in_memory(tmp_path, workers):
    """The same four files from a FastaFile as from its path; with keep=True their contents in memory too."""
    fasta = tmp_path / "in.fa.gz"
    fasta.write_bytes(gzip.compress(b">b\nATGAAATTTGGGCCCAAA\n>a\nATGTAA\n>c\nTTAATTAATTAACTCATGCCC\n"))
    kept = preprocess(FastaFile.read(fasta), 9, tmp_path / "kept", keep=True, workers=workers, block_bases=9)
    plain = preprocess(fasta, 9, tmp_path / "plain", workers=workers, block_bases=9)
    for name in ("chunks.fa", "nucleotide.fa", "protein.faa", "preprocess.json"):
        assert (tmp_path / "kept" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    assert json.loads(plain.paths.summary.read_text())["input_sha256"] == sha256_file(fasta)
    assert plain.samples is None
    samples = kept.samples
    assert samples.chunk_ids == [r.id for r in read_fasta(kept.paths.chunks)]
    assert samples.nucleotide == [(r.id, r.seq) for r in read_fasta(kept.paths.nucleotide)]
    assert samples.protein == [(r.id, r.seq) for r in read_fasta(kept.paths.protein, PROTEIN)]
    assert len(samples.chunk_ids) == 6 and samples.protein and len(samples.protein) == len(samples.nucleotide)


def test_rna_is_read_as_the_dna_it_stands_for_and_said(tmp_path, caplog):
    """U would be skipped by the codon table and left uncomplemented: 60 'frames' where the DNA gives 14."""
    dna = "ATGAAATTTGGGCCCAAATTTAGCTAGCTAGGATCCATGCATTTGACCA" * 4
    (tmp_path / "dna.fa").write_text(f">x\n{dna}\n")
    (tmp_path / "rna.fa").write_text(f">x\n{dna.replace('T', 'U').lower()}\n")
    as_dna = preprocess(tmp_path / "dna.fa", 60, tmp_path / "dna")
    with caplog.at_level("WARNING", logger="virnucpro_core.preprocess.sequences"):
        as_rna = preprocess(tmp_path / "rna.fa", 60, tmp_path / "rna")
    assert "written with U (RNA); read as T" in caplog.text
    assert as_rna.rna_records == 1 and as_dna.rna_records == 0
    for name in ("nucleotide.fa", "protein.faa"):
        assert (tmp_path / "rna" / name).read_text().upper() == (tmp_path / "dna" / name).read_text().upper(), name
    assert any("read as T" in line for line in as_rna.notices())


def test_short_records_and_frameless_chunks_are_counted(tmp_path):
    # TTAATTAATTAACTC has a stop in each of its six frames.
    (tmp_path / "in.fa").write_text(">short\nAT\n>stops\nTTAATTAATTAACTC\n>fine\nATGAAATTT\n")
    result = preprocess(tmp_path / "in.fa", 15, tmp_path / "out")
    assert result.records_shorter_than_a_codon == 1
    assert result.chunks_without_frames == 2, "'short' gives no frame at all; 'stops' only stop codons, every frame"
    summary = json.loads(result.paths.summary.read_text())
    assert summary["records_shorter_than_a_codon"] == 1 and summary["chunks_without_frames"] == 2
    assert any("shorter than one codon" in line for line in result.notices())


def test_a_problem_found_after_blocks_were_written_leaves_no_output(tmp_path):
    """Records stream through; the bad one near the end still means nothing is created, not a half set."""
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\n" + "ATGAAATTTGGG" * 50 + "\n>b\n" + "ATGCCC" * 50 + "\n>c\nACGT*\n")
    with pytest.raises(InputError, match=r"line 6, column 5: character\(s\) '\*' in record 'c'"):
        preprocess(fasta, 100, tmp_path / "out", workers=1, block_bases=100)
    assert not (tmp_path / "out").exists(), "no output folder for a run that failed"
    assert [p.name for p in tmp_path.iterdir()] == ["in.fa"], "no staging folder left behind"


@pytest.mark.parametrize(
    ("option", "value"), [("workers", 0), ("workers", 1.5), ("block_bases", 0), ("block_bases", True)],
    ids=["no-workers", "fractional-workers", "empty-blocks", "bool-blocks"],
)  # fmt: skip
def test_workers_and_block_size_must_be_positive_integers(tmp_path, option, value):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">a\nACGTACGT\n")
    with pytest.raises(InputError, match="is not a positive integer") as raised:
        preprocess(fasta, 300, tmp_path / "out", **{option: value})
    assert raised.value.expected and raised.value.fix, "the message says what is expected and what to do"
