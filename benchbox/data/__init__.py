"""Requests from the user's own data: where it lives (`source`), how it is read (`readers`),
checked against the model and sampled within a memory limit (`samples`), and made into the
request pool a cell cycles through, padded per batch, with each request's shape bucket (`pool`).

The room sits below the stages (sweep, measure, load, remote): it imports only `schema`,
`errors` and `model`. pyarrow and onnx are imported where a source of theirs is read.
"""
