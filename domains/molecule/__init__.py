"""The molecule domain: SMILES tokens, the RDKit task reward and the Table 2 statistics."""
