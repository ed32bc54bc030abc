"""The one FASTA reader: nucleotide and protein files, read (and hashed) in one pass."""

from __future__ import annotations

import gzip

import pytest

from virnucpro_core.errors import InputError
from virnucpro_core.preprocess.fasta import NUCLEOTIDE, PROTEIN, FastaFile, FastaRecord, read_fasta
from virnucpro_core.files import sha256_file

TEXT = ">r1 first\nACGT\nacgn\n>r2\nTTTT\n"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_fasta_file_reads_records_and_hashes_the_bytes_in_one_pass(tmp_path, compressed):
    path = tmp_path / ("in.fa.gz" if compressed else "in.fa")
    data = TEXT.encode()
    path.write_bytes(gzip.compress(data) + b"\0" * 8 if compressed else data)
    fasta = FastaFile.read(path)
    assert fasta.records == [FastaRecord("r1", "ACGTacgn"), FastaRecord("r2", "TTTT")]
    assert fasta.records == read_fasta(path)
    assert fasta.sha256 == sha256_file(path), "the digest is the file's bytes as stored (gzip padding included)"


def test_a_large_file_is_hashed_whole(tmp_path):
    path = tmp_path / "big.fa"
    path.write_text("".join(f">r{i}\n{'ACGT' * 500}\n" for i in range(2000)))  # ~4 MB: several reads
    assert FastaFile.read(path).sha256 == sha256_file(path)


def test_proteins_are_read_with_the_protein_alphabet(tmp_path):
    path = tmp_path / "p.faa"
    path.write_text(">f1\nMKV\nLW\n>f2\nX-.\n")
    assert read_fasta(path, PROTEIN) == [FastaRecord("f1", "MKVLW"), FastaRecord("f2", "X-.")]
    with pytest.raises(InputError, match="not a valid nucleotide FASTA file") as info:
        read_fasta(path, NUCLEOTIDE)
    assert "line 3, column 1: character(s) 'L' in record 'f1'" in str(info.value), str(info.value)  # K, M, V, W: IUPAC


def test_protein_problems_are_named_as_protein_ones(tmp_path):
    path = tmp_path / "bad.faa"
    path.write_text(">a\nmkv\n")
    with pytest.raises(InputError, match="not a valid protein FASTA file") as info:
        read_fasta(path, PROTEIN)
    assert "'kmv'" in str(info.value) and "pass protein.faa" in str(info.value)
    with pytest.raises(InputError, match="a protein FASTA file"):
        read_fasta(tmp_path / "missing.faa", PROTEIN)
