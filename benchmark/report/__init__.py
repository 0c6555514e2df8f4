"""`bench report`: the store -> pandas -> tables, comparisons and seaborn figures -> markdown.

Reports are pure functions of the store: nothing is trained, and a second run
writes byte-identical files.
"""
