"""Models: the registry of families and their facts (families.py, no torch), the closed-form
costs (cost.py), the builders (build.py) and the networks they build (recurrent.py,
seq2seq.py, numba_rnn.py), all honouring one contract (contract.py)."""
