"""The vectorised preprocessing against the original code, output for output and byte for byte.

``virnucpro_core.preprocess.reference`` is the code as it was (a dict lookup per
codon, a set difference per FASTA line, one core). Every test here runs it and
the new code on the same input and asks for identical results: random
sequences from hypothesis (IUPAC codes, U, lower case, ORF-like stretches so
that frames are kept, lengths 0-1000, chunk sizes 300, 500 and odd ones), random
FASTA files (line endings, whitespace, bad characters, non-ASCII), and the
bundled smoke data in prediction and training mode.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqFeature import FeatureLocation, SeqFeature
from Bio.SeqRecord import SeqRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virnucpro_core.preprocess import fasta as fasta_module
from virnucpro_core.errors import InputError
from virnucpro_core.preprocess.sequences import (
    CODON_TABLE,
    FastaRecord,
    preprocess,
    read_fasta,
    reverse_complement,
    select_frames,
    six_frames,
    translate,
)
from virnucpro_core.preprocess.reference import (
    preprocess_reference,
    read_fasta_reference,
    reverse_complement_reference,
    select_frames_reference,
    six_frames_reference,
    translate_reference,
)

SMOKE = Path(__file__).resolve().parents[2] / "fixtures" / "smoke"
OUTPUTS = ("chunks.fa", "nucleotide.fa", "protein.faa", "preprocess.json")
IUPAC = "ACGTUNRYKMSWBDHVacgtunrykmswbdhv"
SENSE = sorted(codon for codon, residue in CODON_TABLE.items() if residue != "*")
STOPS = sorted(codon for codon, residue in CODON_TABLE.items() if residue == "*")

# ORF-like stretches (stop-free codons, either strand, either case) keep frames alive; noise breaks codons.
_orf = st.lists(st.sampled_from(SENSE), min_size=1, max_size=120).map("".join)
_piece = st.one_of(
    _orf,
    _orf.map(reverse_complement_reference),
    _orf.map(str.lower),
    st.text(alphabet=IUPAC, max_size=30),
    st.text(alphabet="ACGT", max_size=30),
    st.sampled_from(STOPS),
)
sequences = st.lists(_piece, max_size=12).map(lambda parts: "".join(parts)[:1000])
chunk_sizes = st.sampled_from([300, 500, 3, 7, 31, 299, 301])


def _frames(frames) -> list[tuple]:
    return [(f.id, f.chunk_id, f.frame, f.nucleotide, f.protein) for f in frames]


# ----------------------------------------------------------------- literal values, so both could be wrong only alike


def test_a_codon_with_a_non_acgt_base_gives_no_residue_and_lower_case_is_not_read():
    assert translate("ATGNNNAAATAA") == "MK*" == translate_reference("ATGNNNAAATAA")
    assert translate("atgaaa") == "" == translate_reference("atgaaa"), "translate itself does not upper-case"
    assert translate("AUGAAA") == "K" == translate_reference("AUGAAA"), "U is read as T before, never here"


def test_nucleotide_is_one_base_longer_than_the_residues_read():
    # 'NNN' gives no residue, so 'MKF' (3 residues) covers 3*3+1 = 10 bases from the frame's offset.
    (frame,) = [f for f in select_frames(FastaRecord("c", "ATGNNNAAATTTGGG")) if f.frame == 1]
    assert (frame.protein, frame.nucleotide) == ("MKFG", "ATGNNNAAATTTG")
    assert _frames(select_frames(FastaRecord("c", "ATGNNNAAATTTGGG"))) == _frames(
        select_frames_reference(FastaRecord("c", "ATGNNNAAATTTGGG"))
    )


# ----------------------------------------------------------------- random sequences


@given(seq=sequences)
@settings(max_examples=300, deadline=None)
def test_translation_matches_the_reference(seq):
    for offset in range(3):
        assert translate(seq[offset:]) == translate_reference(seq[offset:]), f"offset {offset}"
    assert six_frames(seq) == six_frames_reference(seq)
    assert reverse_complement(seq) == reverse_complement_reference(seq)


@given(seq=sequences, mode=st.sampled_from(["prediction", "training"]), data=st.data())
@settings(max_examples=300, deadline=None)
def test_selected_frames_match_the_reference(seq, mode, data):
    references = None
    if mode == "training":
        proteins = [p for p in six_frames_reference(seq) if p]
        # Pieces of the chunk's own proteins (so that frames match), whole proteins, and unrelated text.
        pieces = [
            protein[start:]
            for protein in proteins
            for start in [data.draw(st.integers(0, len(protein) - 1), label="cut")]
        ]
        references = data.draw(st.lists(st.sampled_from(pieces), max_size=3), label="refs") if pieces else []
        references += data.draw(st.lists(st.text("ACDEFGHIKLMNPQRSTVWY*", max_size=40), max_size=2), label="other")
    chunk = FastaRecord("rec_chunk_1", seq)
    assert _frames(select_frames(chunk, references)) == _frames(select_frames_reference(chunk, references))


def test_non_ascii_text_keeps_its_positions():
    """Not FASTA (read_fasta refuses it), but select_frames takes any str: a non-ASCII character is one position."""
    chunk = FastaRecord("c_chunk_1", "ATGé" + "AAA" * 5 + "ßTTT")
    assert _frames(select_frames(chunk)) == _frames(select_frames_reference(chunk))


# ----------------------------------------------------------------- whole runs on random FASTA files


def _write_gbff(path: Path, records: list[tuple[str, str]], proteins: dict[str, list[str]]) -> None:
    entries = []
    for name, seq in records:
        if name not in proteins:
            continue
        entry = SeqRecord(Seq(seq.upper().replace("U", "T")), id=name, name=name[:16],
                          annotations={"molecule_type": "DNA"})  # fmt: skip
        for protein in proteins[name]:
            entry.features.append(SeqFeature(FeatureLocation(0, 3), type="CDS", qualifiers={"translation": [protein]}))
        entries.append(entry)
    SeqIO.write(entries, path, "genbank")


def _same_files(left: Path, right: Path) -> list[str]:
    """The output files that differ (empty when the two sets are byte-identical)."""
    return [name for name in OUTPUTS if (left / name).read_bytes() != (right / name).read_bytes()]


@given(
    records=st.lists(sequences.filter(bool), min_size=1, max_size=5),
    size=chunk_sizes,
    block_bases=st.integers(1, 3000),
    training=st.booleans(),
    data=st.data(),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_preprocess_writes_the_reference_bytes(records, size, block_bases, training, data):
    named = [(f"r{i}", seq) for i, seq in enumerate(records)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fasta = root / "in.fa"
        fasta.write_text("".join(f">{name} some description\n{seq}\n" for name, seq in named))
        reference = None
        if training:
            proteins = {}
            for name, seq in named[:-1] or named:  # the last of several records has no GenBank entry
                frames = [p for p in six_frames_reference(seq.replace("U", "T").replace("u", "t")) if p]
                proteins[name] = data.draw(st.lists(st.sampled_from(frames), max_size=3), label=name) if frames else []
            reference = [root / "ref.gbff"]
            _write_gbff(reference[0], named, proteins)
        old = preprocess_reference(fasta, size, root / "old", reference=reference)
        new = preprocess(fasta, size, root / "new", reference=reference, workers=1, block_bases=block_bases)
        assert _same_files(root / "old", root / "new") == []
        assert new.to_dict() == old.to_dict()


@st.composite
def fasta_texts(draw) -> str:
    """FASTA-ish text: headers, sequence lines with stray whitespace, bad or non-ASCII characters, any line ending."""
    line = st.one_of(
        st.builds(lambda h: ">" + h, st.text(alphabet="ab1 \t\x0bé>", max_size=8)),
        st.text(alphabet=IUPAC + " \t\x0b\x0c\x1c\x1f", max_size=20),
        st.text(alphabet="ACGTN*-.1é\xa0\u2028 ", max_size=6),
    )
    lines = draw(st.lists(line, max_size=10))
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines)))
    return "".join(text + end for text, end in zip(lines, endings))


def _read(reader, path):
    try:
        return reader(path)
    except InputError as error:
        return f"InputError: {error}"


@given(text=fasta_texts(), compressed=st.booleans(), read_size=st.sampled_from([1, 2, 3, 5, 64, 1 << 20]))
@settings(max_examples=400, deadline=None)
def test_read_fasta_matches_the_reference(text, compressed, read_size):
    """Small read sizes put line ends, "\r\n" pairs, headers and records across the reads."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.fa"
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data) if compressed else data)
        default, fasta_module._READ_SIZE = fasta_module._READ_SIZE, read_size
        try:
            assert _read(read_fasta, path) == _read(read_fasta_reference, path)
        finally:
            fasta_module._READ_SIZE = default


def test_read_fasta_reports_every_problem_like_the_reference(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_bytes(">a\nAC*GT\r\n>a\n\n> \nNN\n>b\nAC GT\u2028x\rA\n".encode())
    new, old = _read(read_fasta, path), _read(read_fasta_reference, path)
    assert new == old
    assert "column 3: character(s) '*'" in new and "duplicate id 'a'" in new and "header without an id" in new


# ----------------------------------------------------------------- the bundled smoke data


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """The original code's four files for each smoke input, mode and chunk size (made once)."""
    made = {}

    def run(name: str, training: bool, size: int) -> Path:
        key = (name, training, size)
        if key not in made:
            out = tmp_path_factory.mktemp(f"ref-{name}-{'train' if training else 'predict'}-{size}")
            reference = [SMOKE / f"{name}_reference.gbff"] if training else None
            preprocess_reference(SMOKE / f"{name}.fasta", size, out, reference=reference)
            made[key] = out
        return made[key]

    return run


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("size", [300, 500])
@pytest.mark.parametrize("training", [False, True], ids=["prediction", "training"])
@pytest.mark.parametrize("name", ["viral", "host"])
def test_smoke_data_gives_the_reference_bytes(reference_runs, tmp_path, name, training, size, workers):
    expected = reference_runs(name, training, size)
    reference = [SMOKE / f"{name}_reference.gbff"] if training else None
    # Blocks of 40,000 bases: about 11 per file, long records split over blocks, so the pool runs at 2 workers.
    result = preprocess(SMOKE / f"{name}.fasta", size, tmp_path, reference=reference, workers=workers,
                        block_bases=40_000)  # fmt: skip
    assert _same_files(expected, tmp_path) == [], f"{name} {'training' if training else 'prediction'} {size} bp"
    assert result.frames > 0 and (not training or result.dropped_ambiguous_chunks > 0), (
        "the smoke data must exercise kept frames (and, in training mode, dropped ambiguous chunks)"
    )
