"""prefopt: preference optimisation (DPO, DNO, LiPO-λ, D²O, OSP, CREAM, RRPO) behind one trainer core."""
