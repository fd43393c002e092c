"""The web demo: `python -m hmr_tf.web --checkpoint=DIR` (a local gradio page).

A thin caller of the demo's library (hmr_tf.inference.demo_lib), as
`python -m hmr_tf.demo` is: `predict` loads the model and turns one uploaded
photo into the demo's outputs, `page` is the gradio page around it,
`__main__` the command line. The page makes no request outside the machine
(gradio's analytics off, no share link, local fonts).
"""
