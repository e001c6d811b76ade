"""Queue position: shadow orders in the real L3 FIFO, level-2 queue models, survival scoring."""
