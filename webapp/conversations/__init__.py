"""Conversations and what they hold: the models, the message tree, export, titles, response
parameters, images, Markdown rendering, the model list and what replies cost."""
