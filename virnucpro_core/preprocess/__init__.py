"""Preprocessing as VirNucPro does it: DNA records → chunks → six-frame translation → stop-free frames.

* ``fasta`` — the one FASTA reader (nucleotide and protein alphabets, gzip,
  read and hashed in one pass);
* ``sequences`` — chunking, frame selection and the preprocessing stage's files;
* ``translation`` — six-frame translation, vectorised with numpy;
* ``workers`` — an ordered, memory-bounded map over worker processes;
* ``reference`` — the original preprocessing, kept as the oracle of tests and benchmarks.
"""
