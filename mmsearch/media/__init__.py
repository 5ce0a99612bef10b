"""Reading media: which files are read (``formats``), decoding images and texts
(``decode``), words in pictures (``ocr``) and video (``video/``).

Media code knows nothing of models or storage: it turns files into pixels,
text and frames, and says why when it can't.
"""
