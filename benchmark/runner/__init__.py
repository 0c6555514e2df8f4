"""Running cells: execute one cell (train + evaluate), and run a grid through an executor."""
