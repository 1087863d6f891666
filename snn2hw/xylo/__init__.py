"""The Xylo (family ``xylo-iaf``) compiler path: NIR graph -> XyloProgram (docs/xylo.md)."""
